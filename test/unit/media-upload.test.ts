import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { isMultipart, readLimited, readUpload } from "../../src/media/upload";

/** A stream that yields `chunk` forever and records how many chunks were pulled and whether it was cancelled. */
function endless(chunk: Uint8Array) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulled++;
      controller.enqueue(chunk.slice());
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

async function expectApiError(p: Promise<unknown>, code: string): Promise<ApiError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe(code);
  return err as ApiError;
}

describe("readLimited", () => {
  it("reads a body at the limit", async () => {
    const body = new Response(new Uint8Array(1000)).body;
    expect((await readLimited(body, 1000)).byteLength).toBe(1000);
  });

  it("stops an endless body at the limit and cancels it", async () => {
    const { stream, state } = endless(new Uint8Array(100));
    const err = await expectApiError(readLimited(stream, 1000), "too_large");
    expect(err.details).toEqual({ maxBytes: 1000 });
    expect(state.cancelled).toBe(true);
    // 11 chunks of 100 bytes cross 1000; the stream may be one pull ahead, never more.
    expect(state.pulled).toBeLessThanOrEqual(13);
  });

  it("no body is empty", async () => {
    expect((await readLimited(null, 10)).byteLength).toBe(0);
  });
});

describe("readUpload", () => {
  it("refuses a declared Content-Length over the limit without reading the body", async () => {
    const { stream, state } = endless(new Uint8Array(10));
    const req = new Request("http://x/", { method: "POST", body: stream, headers: { "content-length": "5000" } });
    await expectApiError(readUpload(req, 1000), "too_large");
    expect(state.pulled).toBeLessThanOrEqual(1);
  });

  it("takes the first file part of a multipart body", async () => {
    const form = new FormData();
    form.append("caption", "hello");
    form.append("file", new File([new Uint8Array([1, 2, 3])], "a.bin"));
    form.append("other", new File([new Uint8Array([9])], "b.bin"));
    const req = new Request("http://x/", { method: "POST", body: form });
    expect([...(await readUpload(req, 1000))]).toEqual([1, 2, 3]);
  });

  it("a multipart file over the limit is refused", async () => {
    const form = new FormData();
    form.append("file", new File([new Uint8Array(1001)], "a.bin"));
    await expectApiError(readUpload(new Request("http://x/", { method: "POST", body: form }), 1000), "too_large");
  });

  it("multipart without a file part, or unparsable, is a bad request", async () => {
    const form = new FormData();
    form.append("text", "only text");
    await expectApiError(readUpload(new Request("http://x/", { method: "POST", body: form }), 1000), "bad_request");
    const garbage = new Request("http://x/", {
      method: "POST",
      body: "not multipart at all",
      headers: { "content-type": "multipart/form-data; boundary=xyz" },
    });
    await expectApiError(readUpload(garbage, 1000), "bad_request");
  });

  it("recognises multipart content types", () => {
    expect(isMultipart("multipart/form-data; boundary=a")).toBe(true);
    expect(isMultipart("Multipart/Form-Data")).toBe(true);
    expect(isMultipart("multipart/form-datax")).toBe(false);
    expect(isMultipart("application/octet-stream")).toBe(false);
    expect(isMultipart(null)).toBe(false);
  });
});
