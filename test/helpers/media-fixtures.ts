/**
 * Small but well-formed samples of every allowed media type, and of things that must be refused.
 * Headers are real (the structures the sniffer reads are spelled out byte by byte); payloads are short.
 */

const enc = new TextEncoder();

/** Concatenates byte arrays, numbers (single bytes) and ASCII strings. */
export function bytesOf(...parts: (Uint8Array | number[] | string)[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

function b64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function u32be(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

function filler(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** An ISO-BMFF `ftyp` box with the given brands, followed by a little payload. */
export function ftyp(major: string, compatible: string[]): Uint8Array {
  const size = 16 + 4 * compatible.length;
  return bytesOf(u32be(size), "ftyp", major, u32be(0), ...compatible, u32be(16), "free", filler(8));
}

function riff(form: string, body: Uint8Array): Uint8Array {
  return bytesOf("RIFF", u32le(4 + body.length), form, body);
}

/** An Ogg first page whose packet starts with `packet`. */
function ogg(packet: Uint8Array): Uint8Array {
  return bytesOf("OggS", [0, 2], new Uint8Array(8), u32le(1), u32le(0), u32le(0), [1, packet.length], packet);
}

/** An MPEG-1 Layer III frame at 128 kbit/s, 44.1 kHz: 417 bytes. */
function mp3Frame(): Uint8Array {
  return bytesOf([0xff, 0xfb, 0x90, 0x00], filler(413));
}

/** An ADTS AAC-LC frame of `len` bytes at 44.1 kHz, stereo. */
function adtsFrame(len: number): Uint8Array {
  return bytesOf([0xff, 0xf1, 0x50, 0x80 | ((len >> 11) & 0x03), (len >> 3) & 0xff, ((len & 0x07) << 5) | 0x1f, 0xfc], filler(len - 7));
}

/** One sample per allowed type: name, bytes, and the content type the server must detect. */
export const SAMPLES: { name: string; bytes: Uint8Array; contentType: string }[] = [
  { name: "png", contentType: "image/png", bytes: b64("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==") },
  { name: "gif", contentType: "image/gif", bytes: b64("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7") },
  { name: "jpeg", contentType: "image/jpeg", bytes: bytesOf([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10], "JFIF", [0, 1, 1, 0, 0, 1, 0, 1, 0, 0], filler(64), [0xff, 0xd9]) },
  { name: "webp", contentType: "image/webp", bytes: riff("WEBP", bytesOf("VP8L", u32le(10), [0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88])) },
  { name: "avif", contentType: "image/avif", bytes: ftyp("avif", ["avif", "mif1", "miaf"]) },
  { name: "avif (generic major brand)", contentType: "image/avif", bytes: ftyp("mif1", ["mif1", "avif"]) },
  { name: "heic", contentType: "image/heic", bytes: ftyp("heic", ["mif1", "heic"]) },
  { name: "heif (generic)", contentType: "image/heif", bytes: ftyp("mif1", ["mif1", "miaf"]) },
  { name: "mp4", contentType: "video/mp4", bytes: ftyp("isom", ["isom", "iso2", "avc1", "mp41"]) },
  { name: "mov", contentType: "video/quicktime", bytes: ftyp("qt  ", ["qt  "]) },
  { name: "3gp", contentType: "video/3gpp", bytes: ftyp("3gp4", ["isom", "3gp4"]) },
  {
    name: "webm",
    contentType: "video/webm",
    bytes: bytesOf(
      [0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42, 0xf2, 0x81, 0x04, 0x42, 0xf3, 0x81, 0x08],
      [0x42, 0x82, 0x84],
      "webm",
      [0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02],
      [0x18, 0x53, 0x80, 0x67],
      filler(32),
    ),
  },
  { name: "ogg theora", contentType: "video/ogg", bytes: ogg(bytesOf([0x80], "theora", [3, 2, 1], filler(33))) },
  { name: "mp3 with ID3", contentType: "audio/mpeg", bytes: bytesOf("ID3", [3, 0, 0, 0, 0, 0, 10], filler(10), mp3Frame(), mp3Frame()) },
  { name: "mp3 without tag", contentType: "audio/mpeg", bytes: bytesOf(mp3Frame(), mp3Frame()) },
  { name: "aac (adts)", contentType: "audio/aac", bytes: bytesOf(adtsFrame(120), adtsFrame(96)) },
  { name: "m4a", contentType: "audio/mp4", bytes: ftyp("M4A ", ["M4A ", "mp42", "isom"]) },
  { name: "ogg opus", contentType: "audio/ogg", bytes: ogg(bytesOf("OpusHead", [1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0])) },
  { name: "ogg vorbis", contentType: "audio/ogg", bytes: ogg(bytesOf([1], "vorbis", filler(23))) },
  {
    name: "wav",
    contentType: "audio/wav",
    bytes: riff("WAVE", bytesOf("fmt ", u32le(16), [1, 0, 1, 0], u32le(8000), u32le(8000), [1, 0, 8, 0], "data", u32le(8), filler(8))),
  },
  { name: "flac", contentType: "audio/flac", bytes: bytesOf("fLaC", [0x80, 0, 0, 0x22], filler(34)) },
  { name: "pdf", contentType: "application/pdf", bytes: bytesOf("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n") },
];

/** Content that is not on the allow-list, however it is labelled. */
export const REFUSED: { name: string; bytes: Uint8Array }[] = [
  { name: "svg", bytes: bytesOf('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>') },
  { name: "html", bytes: bytesOf("<!doctype html><script>alert(document.cookie)</script>") },
  { name: "plain text", bytes: bytesOf("just some words, nothing more") },
  { name: "windows executable", bytes: bytesOf("MZ", [0x90, 0, 3, 0, 0, 0], filler(64)) },
  { name: "zip", bytes: bytesOf("PK", [3, 4, 20, 0], filler(40)) },
  { name: "riff avi", bytes: riff("AVI ", filler(32)) },
  {
    name: "matroska (not webm)",
    bytes: bytesOf([0x1a, 0x45, 0xdf, 0xa3, 0x93, 0x42, 0x82, 0x88], "matroska", [0x42, 0x87, 0x81, 0x04], filler(16)),
  },
  { name: "ftyp with unknown brands", bytes: ftyp("zzzz", ["yyyy", "xxxx"]) },
  { name: "ogg with unknown codec", bytes: ogg(bytesOf("Speex   ", filler(40))) },
  { name: "a lone mp3 frame sync followed by garbage", bytes: bytesOf([0xff, 0xfb, 0x90, 0x00], filler(600, 1)) },
  { name: "ID3 tag with nothing after it", bytes: bytesOf("ID3", [3, 0, 0, 0, 0, 0, 10], filler(10)) },
  { name: "three bytes", bytes: bytesOf([0xff, 0xd8, 0xff].slice(0, 2), [0]) },
];

/** A large PNG-signed body of `size` bytes (signature then filler). */
export function bigPng(size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return out;
}
