// A client for the Sotto appliance's REST API (/api/v1), with no dependencies: Node 20's fetch,
// FormData, Blob and streams. Types: index.d.ts, checked against the appliance's OpenAPI document by the
// appliance's own tests (tests/test_typescript_sdk.py), so the two cannot drift apart.

import { openAsBlob } from "node:fs";
import { basename } from "node:path";

/** Every route this client calls, as [method, path] in the OpenAPI document's spelling. */
export const ROUTES = Object.freeze({
  upload: ["POST", "/api/v1/transcriptions"],
  job: ["GET", "/api/v1/jobs/{job_id}"],
  jobEvents: ["GET", "/api/v1/jobs/{job_id}/events"],
  cancel: ["DELETE", "/api/v1/jobs/{job_id}"],
  list: ["GET", "/api/v1/transcripts"],
  transcript: ["GET", "/api/v1/transcripts/{transcript_id}"],
  export: ["GET", "/api/v1/transcripts/{transcript_id}/export"],
  delete: ["DELETE", "/api/v1/transcripts/{transcript_id}"],
  search: ["GET", "/api/v1/search"],
});

/** The appliance refused or failed a request: the HTTP status and the appliance's own message. */
export class SottoError extends Error {
  /** @param {number} status @param {string} detail */
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.name = "SottoError";
    this.status = status;
    this.detail = detail;
  }
}

/** @param {string} template @param {Record<string, string>} values */
function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(values[name]));
}

/** @param {Record<string, unknown> | undefined} options */
function optionFields(options) {
  /** @type {[string, string][]} */
  const fields = [];
  for (const [name, value] of Object.entries(options ?? {})) {
    if (value === undefined || value === null) continue;
    fields.push([name, Array.isArray(value) ? value.join(",") : String(value)]);
  }
  return fields;
}

/** @param {string | Blob | Uint8Array} file @param {string | undefined} filename */
async function asBlob(file, filename) {
  if (typeof file === "string") return { blob: await openAsBlob(file), name: filename ?? basename(file) };
  if (file instanceof Blob) return { blob: file, name: filename ?? (/** @type {any} */ (file).name || "recording") };
  return { blob: new Blob([file]), name: filename ?? "recording" };
}

export class SottoClient {
  /**
   * @param {string} baseUrl e.g. "https://sotto.example:8443"
   * @param {string} apiKey an API key (sent as a Bearer token)
   * @param {{ fetch?: typeof fetch }} [init]
   */
  constructor(baseUrl, apiKey, init = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.apiKey = apiKey;
    this.fetch = init.fetch ?? globalThis.fetch;
  }

  /** @param {string} method @param {string} path @param {RequestInit & { query?: Record<string, unknown> }} [init] */
  async request(method, path, init = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of optionFields(init.query)) url.searchParams.set(name, value);
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.apiKey}`);
    const response = await this.fetch(url, { ...init, method, headers });
    if (!response.ok) {
      const text = await response.text();
      let detail = text;
      try {
        detail = JSON.parse(text).detail ?? text;
      } catch {
        // not JSON: the text is the detail
      }
      throw new SottoError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return response;
  }

  /**
   * Queue a recording. `file` is a path, a Blob or bytes. With `onProgress` the recording is streamed
   * as the raw request body and `onProgress(sentBytes, totalBytes)` is called as it goes; otherwise it
   * is sent as a multipart form.
   * @param {string | Blob | Uint8Array} file
   * @param {import("./index.js").UploadOptions} [options]
   * @param {{ filename?: string, onProgress?: (sent: number, total: number) => void, signal?: AbortSignal }} [init]
   * @returns {Promise<import("./index.js").Job>}
   */
  async upload(file, options = {}, init = {}) {
    const { blob, name } = await asBlob(file, init.filename);
    const [method, path] = ROUTES.upload;
    if (init.onProgress) {
      const total = blob.size;
      const report = init.onProgress;
      let sent = 0;
      const counting = new TransformStream({
        transform(chunk, controller) {
          sent += chunk.byteLength;
          report(sent, total);
          controller.enqueue(chunk);
        },
      });
      const response = await this.request(method, path, {
        body: blob.stream().pipeThrough(counting),
        duplex: "half",
        headers: { "content-type": blob.type || "application/octet-stream", "x-filename": encodeURIComponent(name) },
        query: { ...options, filename: name },
        signal: init.signal,
      });
      return response.json();
    }
    const form = new FormData();
    form.set("file", blob, name);
    for (const [field, value] of optionFields(options)) form.set(field, value);
    return (await this.request(method, path, { body: form, signal: init.signal })).json();
  }

  /** @param {string} jobId @returns {Promise<import("./index.js").Job>} */
  async job(jobId) {
    const [method, path] = ROUTES.job;
    return (await this.request(method, fill(path, { job_id: jobId }))).json();
  }

  /**
   * Follow the job's server-sent events until it ends; resolve with its last state when it is done,
   * reject with a SottoError when it failed or was cancelled.
   * @param {string} jobId
   * @param {{ onProgress?: (job: import("./index.js").Job) => void, signal?: AbortSignal }} [init]
   * @returns {Promise<import("./index.js").Job>}
   */
  async wait(jobId, init = {}) {
    const [method, path] = ROUTES.jobEvents;
    const response = await this.request(method, fill(path, { job_id: jobId }), {
      headers: { accept: "text/event-stream" },
      signal: init.signal,
    });
    /** @type {import("./index.js").Job | undefined} */
    let job;
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const chunk of /** @type {AsyncIterable<Uint8Array>} */ (response.body ?? [])) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line.startsWith("data:")) {
          job = JSON.parse(line.slice(5));
          init.onProgress?.(/** @type {import("./index.js").Job} */ (job));
        }
      }
    }
    if (!job) job = await this.job(jobId); // the stream ended without an event: ask once
    if (job.state !== "done") throw new SottoError(422, job.error || `the job ended ${job.state}`);
    return job;
  }

  /** @param {string} jobId @returns {Promise<import("./index.js").Job>} */
  async cancel(jobId) {
    const [method, path] = ROUTES.cancel;
    return (await this.request(method, fill(path, { job_id: jobId }))).json();
  }

  /**
   * Upload, wait, and fetch the transcript document.
   * @param {string | Blob | Uint8Array} file
   * @param {import("./index.js").UploadOptions} [options]
   * @param {{ filename?: string, onUpload?: (sent: number, total: number) => void, onProgress?: (job: import("./index.js").Job) => void, signal?: AbortSignal }} [init]
   * @returns {Promise<import("./index.js").Transcript>}
   */
  async transcribe(file, options = {}, init = {}) {
    const job = await this.upload(file, options, { filename: init.filename, onProgress: init.onUpload, signal: init.signal });
    const done = await this.wait(job.job_id, { onProgress: init.onProgress, signal: init.signal });
    return this.transcript(/** @type {string} */ (done.transcript_id));
  }

  /** @param {string} transcriptId @returns {Promise<import("./index.js").Transcript>} */
  async transcript(transcriptId) {
    const [method, path] = ROUTES.transcript;
    return (await this.request(method, fill(path, { transcript_id: transcriptId }))).json();
  }

  /** @param {{ limit?: number, offset?: number, workspace_id?: string }} [page] @returns {Promise<import("./index.js").TranscriptPage>} */
  async list(page = {}) {
    const [method, path] = ROUTES.list;
    return (await this.request(method, path, { query: page })).json();
  }

  /**
   * Full-text search across the transcripts the key may see.
   * @param {string} q
   * @param {{ language?: string, speaker?: string, from?: string, to?: string, limit?: number, offset?: number }} [filters]
   * @returns {Promise<import("./index.js").SearchResult>}
   */
  async search(q, filters = {}) {
    const [method, path] = ROUTES.search;
    return (await this.request(method, path, { query: { q, ...filters } })).json();
  }

  /**
   * The transcript as a file: text formats (txt, srt, vtt, json, md, csv) as a string, docx and pdf as bytes.
   * @param {string} transcriptId
   * @param {import("./index.js").ExportFormat} [format]
   * @param {import("./index.js").ExportOptions} [options]
   * @returns {Promise<string | Uint8Array>}
   */
  async export(transcriptId, format = "txt", options = {}) {
    const [method, path] = ROUTES.export;
    const response = await this.request(method, fill(path, { transcript_id: transcriptId }), {
      query: { format, ...options },
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    return format === "docx" || format === "pdf" ? bytes : new TextDecoder().decode(bytes);
  }

  /** Delete a transcript permanently. @param {string} transcriptId @returns {Promise<void>} */
  async delete(transcriptId) {
    const [method, path] = ROUTES.delete;
    await this.request(method, fill(path, { transcript_id: transcriptId }));
  }
}
