/**
 * Media type detection from the bytes alone (magic numbers), against the allow-list.
 * Pure: no Cloudflare imports, so it is unit-tested in isolation.
 *
 * The declared `Content-Type` and the file name are never consulted: a client can claim anything,
 * and what a browser does with the bytes depends on what they are, not on what they were called.
 * SVG and HTML are deliberately absent: they can carry script.
 */

/** How a type is presented: images, video and audio are shown inline, anything else is downloaded. */
export type MediaKind = "image" | "video" | "audio" | "document";

/** A detected, allowed type. */
export interface SniffedType {
  contentType: string;
  /** File extension used in `Content-Disposition` file names. */
  ext: string;
  kind: MediaKind;
}

const t = (contentType: string, ext: string, kind: MediaKind): SniffedType => ({ contentType, ext, kind });

/** Every type an upload may have. */
export const ALLOWED_TYPES = {
  jpeg: t("image/jpeg", "jpg", "image"),
  png: t("image/png", "png", "image"),
  gif: t("image/gif", "gif", "image"),
  webp: t("image/webp", "webp", "image"),
  avif: t("image/avif", "avif", "image"),
  heic: t("image/heic", "heic", "image"),
  heif: t("image/heif", "heif", "image"),
  mp4: t("video/mp4", "mp4", "video"),
  quicktime: t("video/quicktime", "mov", "video"),
  threeGpp: t("video/3gpp", "3gp", "video"),
  webm: t("video/webm", "webm", "video"),
  oggVideo: t("video/ogg", "ogv", "video"),
  mp3: t("audio/mpeg", "mp3", "audio"),
  aac: t("audio/aac", "aac", "audio"),
  m4a: t("audio/mp4", "m4a", "audio"),
  oggAudio: t("audio/ogg", "ogg", "audio"),
  wav: t("audio/wav", "wav", "audio"),
  flac: t("audio/flac", "flac", "audio"),
  pdf: t("application/pdf", "pdf", "document"),
} as const satisfies Record<string, SniffedType>;

/** The allowed content types, for docs and error messages. */
export const ALLOWED_CONTENT_TYPES: readonly string[] = [...new Set(Object.values(ALLOWED_TYPES).map((x) => x.contentType))];

/** Whether `bytes` starts with `sig` at `offset` (numbers are bytes, strings are ASCII). */
function at(bytes: Uint8Array, offset: number, sig: string | readonly number[]): boolean {
  const n = sig.length;
  if (offset < 0 || offset + n > bytes.length) return false;
  for (let i = 0; i < n; i++) {
    const want = typeof sig === "string" ? sig.charCodeAt(i) : sig[i];
    if (bytes[offset + i] !== want) return false;
  }
  return true;
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

function u32be(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

/**
 * Detects the type of an upload from its bytes. Returns null for anything not on the allow-list,
 * including empty input and files too short to carry a complete signature.
 */
export function sniff(bytes: Uint8Array): SniffedType | null {
  if (bytes.length < 4) return null;
  if (at(bytes, 0, [0xff, 0xd8, 0xff])) return ALLOWED_TYPES.jpeg;
  if (at(bytes, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return ALLOWED_TYPES.png;
  if (at(bytes, 0, "GIF87a") || at(bytes, 0, "GIF89a")) return ALLOWED_TYPES.gif;
  if (at(bytes, 0, "RIFF") && bytes.length >= 12) {
    if (at(bytes, 8, "WEBP")) return ALLOWED_TYPES.webp;
    if (at(bytes, 8, "WAVE")) return ALLOWED_TYPES.wav;
    return null;
  }
  if (at(bytes, 0, "%PDF-")) return ALLOWED_TYPES.pdf;
  if (at(bytes, 0, "fLaC")) return ALLOWED_TYPES.flac;
  if (at(bytes, 0, "OggS")) return sniffOgg(bytes);
  if (at(bytes, 0, [0x1a, 0x45, 0xdf, 0xa3])) return sniffEbml(bytes);
  if (at(bytes, 4, "ftyp")) return sniffFtyp(bytes);
  if (at(bytes, 0, "ID3")) return sniffAfterId3(bytes);
  return sniffAudioFrames(bytes, 0);
}

// Ogg: the first page (27-byte header + segment table) carries the codec's identification header.
function sniffOgg(bytes: Uint8Array): SniffedType | null {
  if (bytes.length < 28) return null;
  const segments = bytes[26];
  const p = 27 + segments;
  if (at(bytes, p, "OpusHead") || at(bytes, p, [0x01, ...asciiCodes("vorbis")]) || at(bytes, p, [0x7f, ...asciiCodes("FLAC")])) {
    return ALLOWED_TYPES.oggAudio;
  }
  if (at(bytes, p, [0x80, ...asciiCodes("theora")])) return ALLOWED_TYPES.oggVideo;
  return null;
}

function asciiCodes(s: string): number[] {
  return [...s].map((ch) => ch.charCodeAt(0));
}

// EBML (Matroska family): only the "webm" DocType is allowed. The DocType element (ID 0x4282)
// sits in the EBML header, which is a few dozen bytes long.
function sniffEbml(bytes: Uint8Array): SniffedType | null {
  const end = Math.min(bytes.length - 2, 64);
  for (let i = 4; i < end; i++) {
    if (bytes[i] !== 0x42 || bytes[i + 1] !== 0x82) continue;
    const first = bytes[i + 2];
    // EBML variable-length size: the number of leading zero bits gives the extra length bytes.
    let len = 1;
    while (len <= 8 && (first & (0x80 >> (len - 1))) === 0) len++;
    if (len > 8) return null;
    let size = first & (0xff >> len);
    for (let k = 1; k < len; k++) size = size * 256 + (bytes[i + 2 + k] ?? 0);
    const docType = ascii(bytes, i + 2 + len, Math.min(size, 16));
    return docType === "webm" ? ALLOWED_TYPES.webm : null;
  }
  return null;
}

// ISO base media (MP4, MOV, 3GP, M4A, HEIF, AVIF): an `ftyp` box with a major brand and compatible brands.
const FTYP_BRANDS: Record<string, SniffedType> = {
  avif: ALLOWED_TYPES.avif,
  avis: ALLOWED_TYPES.avif,
  heic: ALLOWED_TYPES.heic,
  heix: ALLOWED_TYPES.heic,
  heim: ALLOWED_TYPES.heic,
  heis: ALLOWED_TYPES.heic,
  hevc: ALLOWED_TYPES.heic,
  hevx: ALLOWED_TYPES.heic,
  "M4A ": ALLOWED_TYPES.m4a,
  "M4B ": ALLOWED_TYPES.m4a,
  "qt  ": ALLOWED_TYPES.quicktime,
  "3gp4": ALLOWED_TYPES.threeGpp,
  "3gp5": ALLOWED_TYPES.threeGpp,
  "3gp6": ALLOWED_TYPES.threeGpp,
  "3gp7": ALLOWED_TYPES.threeGpp,
  "3ge6": ALLOWED_TYPES.threeGpp,
  "3ge7": ALLOWED_TYPES.threeGpp,
  "3gg6": ALLOWED_TYPES.threeGpp,
  "3g2a": ALLOWED_TYPES.threeGpp,
  "3g2b": ALLOWED_TYPES.threeGpp,
  "3g2c": ALLOWED_TYPES.threeGpp,
  isom: ALLOWED_TYPES.mp4,
  iso2: ALLOWED_TYPES.mp4,
  iso3: ALLOWED_TYPES.mp4,
  iso4: ALLOWED_TYPES.mp4,
  iso5: ALLOWED_TYPES.mp4,
  iso6: ALLOWED_TYPES.mp4,
  mp41: ALLOWED_TYPES.mp4,
  mp42: ALLOWED_TYPES.mp4,
  avc1: ALLOWED_TYPES.mp4,
  "M4V ": ALLOWED_TYPES.mp4,
  M4VH: ALLOWED_TYPES.mp4,
  M4VP: ALLOWED_TYPES.mp4,
  dash: ALLOWED_TYPES.mp4,
  MSNV: ALLOWED_TYPES.mp4,
  // Generic HEIF image brands: refined by the compatible brands (avif or heic) when present.
  mif1: ALLOWED_TYPES.heif,
  msf1: ALLOWED_TYPES.heif,
};

function sniffFtyp(bytes: Uint8Array): SniffedType | null {
  const boxSize = u32be(bytes, 0);
  if (boxSize < 16 || boxSize % 4 !== 0 || boxSize > 4096 || bytes.length < 16) return null;
  const major = ascii(bytes, 8, 4);
  const compatible: string[] = [];
  for (let p = 16; p + 4 <= Math.min(boxSize, bytes.length); p += 4) compatible.push(ascii(bytes, p, 4));
  const majorType = FTYP_BRANDS[major];
  if (majorType && majorType !== ALLOWED_TYPES.heif) return majorType;
  // A generic or unknown major brand: the first specific compatible brand decides.
  if (majorType === ALLOWED_TYPES.heif) {
    if (compatible.some((b) => b === "avif" || b === "avis")) return ALLOWED_TYPES.avif;
    if (compatible.some((b) => FTYP_BRANDS[b] === ALLOWED_TYPES.heic)) return ALLOWED_TYPES.heic;
    return ALLOWED_TYPES.heif;
  }
  for (const b of compatible) {
    const found = FTYP_BRANDS[b];
    if (found) return found;
  }
  return null;
}

// ID3v2 tag: 10-byte header with a syncsafe size, optional 10-byte footer; the audio follows it.
function sniffAfterId3(bytes: Uint8Array): SniffedType | null {
  if (bytes.length < 10) return null;
  const size = ((bytes[6] & 0x7f) << 21) | ((bytes[7] & 0x7f) << 14) | ((bytes[8] & 0x7f) << 7) | (bytes[9] & 0x7f);
  const footer = (bytes[5] & 0x10) !== 0 ? 10 : 0;
  const start = 10 + size + footer;
  if (at(bytes, start, "fLaC")) return ALLOWED_TYPES.flac;
  return sniffAudioFrames(bytes, start);
}

const MPEG1_BITRATES = [
  [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448], // layer I
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384], // layer II
  [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], // layer III
];
const MPEG2_BITRATES = [
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256], // layer I
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // layers II and III
];
const SAMPLE_RATES: Record<number, number[]> = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };
const ADTS_SAMPLE_RATE_INDEXES = 13;

/** Length in bytes of the MPEG audio frame whose header is at `p`, or null if it is not a valid header. */
function mpegFrameLength(bytes: Uint8Array, p: number): number | null {
  if (p + 4 > bytes.length || bytes[p] !== 0xff || (bytes[p + 1] & 0xe0) !== 0xe0) return null;
  const version = (bytes[p + 1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 reserved
  const layerBits = (bytes[p + 1] >> 1) & 3; // 3 = I, 2 = II, 1 = III, 0 reserved
  const bitrateIndex = bytes[p + 2] >> 4;
  const rateIndex = (bytes[p + 2] >> 2) & 3;
  // Free-format (0) and bad (15) bitrates, reserved version, layer and sample rate are not audio.
  if (version === 1 || layerBits === 0 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return null;
  const layer = 4 - layerBits; // 1, 2 or 3
  const kbps = version === 3 ? MPEG1_BITRATES[layer - 1][bitrateIndex] : MPEG2_BITRATES[layer === 1 ? 0 : 1][bitrateIndex];
  const rate = SAMPLE_RATES[version][rateIndex];
  const padding = (bytes[p + 2] >> 1) & 1;
  if (layer === 1) return (Math.floor((12 * kbps * 1000) / rate) + padding) * 4;
  const factor = layer === 3 && version !== 3 ? 72 : 144;
  return Math.floor((factor * kbps * 1000) / rate) + padding;
}

/** Length of the ADTS (AAC) frame whose header is at `p`, or null. */
function adtsFrameLength(bytes: Uint8Array, p: number): number | null {
  if (p + 7 > bytes.length || bytes[p] !== 0xff || (bytes[p + 1] & 0xf6) !== 0xf0) return null;
  if (((bytes[p + 2] >> 2) & 0x0f) >= ADTS_SAMPLE_RATE_INDEXES) return null;
  const len = ((bytes[p + 3] & 0x03) << 11) | (bytes[p + 4] << 3) | (bytes[p + 5] >> 5);
  return len >= 7 ? len : null;
}

// Raw MPEG audio or ADTS AAC: a frame sync is only two bytes, so a second frame header must follow
// the first where its length says (or the first frame must end the file exactly).
function sniffAudioFrames(bytes: Uint8Array, p: number): SniffedType | null {
  const adts = adtsFrameLength(bytes, p);
  if (adts !== null) {
    const next = p + adts;
    return next === bytes.length || adtsFrameLength(bytes, next) !== null ? ALLOWED_TYPES.aac : null;
  }
  const mpeg = mpegFrameLength(bytes, p);
  if (mpeg !== null) {
    const next = p + mpeg;
    return next === bytes.length || mpegFrameLength(bytes, next) !== null ? ALLOWED_TYPES.mp3 : null;
  }
  return null;
}
