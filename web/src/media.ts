/**
 * Showing attachments. Media URLs need the bearer token, which an `<img src>` cannot send, so the
 * bytes are fetched with it and shown from a blob URL, cached per media id for the page's life.
 */
import { h } from "./dom";
import { sizeOf } from "./format";

type Descriptor = { id: string; url: string; contentType: string; size: number };

export class MediaView {
  private cache = new Map<string, Promise<string>>();

  constructor(private readonly load: (url: string) => Promise<Blob>) {}

  private blobUrl(d: Descriptor): Promise<string> {
    let p = this.cache.get(d.id);
    if (!p) {
      p = this.load(d.url).then((b) => URL.createObjectURL(b));
      // A failed load is retried the next time the media is drawn.
      p.catch(() => this.cache.delete(d.id));
      this.cache.set(d.id, p);
    }
    return p;
  }

  /** An element for one attachment: the image itself, or a link that downloads the file. */
  render(d: Descriptor): HTMLElement {
    if (d.contentType.startsWith("image/")) {
      const img = h("img", { alt: "Image", "data-media": d.id, loading: "lazy" });
      this.blobUrl(d).then(
        (u) => (img.src = u),
        () => (img.alt = "Image could not be loaded"),
      );
      img.addEventListener("click", () => {
        if (!img.src) return;
        const box = h("div", { class: "lightbox", role: "dialog", "aria-label": "Image", onclick: () => box.remove() }, h("img", { src: img.src, alt: "Image" }));
        document.body.append(box);
      });
      return img;
    }
    const label = `${d.contentType.split("/")[0] ?? "file"} · ${sizeOf(d.size)}`;
    const a = h("a", { href: "#", "data-media": d.id }, `Download ${label}`);
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      void this.blobUrl(d).then((u) => window.open(u, "_blank", "noopener"));
    });
    return a;
  }
}
