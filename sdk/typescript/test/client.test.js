// Runs against a live appliance: tests/test_typescript_sdk.py starts one and sets SOTTO_URL,
// SOTTO_API_KEY and SOTTO_CLIP (a WAV of "The quick brown fox jumps over the lazy dog. ...").
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { SottoClient, SottoError } from "../src/index.js";

const { SOTTO_URL, SOTTO_API_KEY, SOTTO_CLIP } = process.env;
const skip = !(SOTTO_URL && SOTTO_API_KEY && SOTTO_CLIP) && "needs SOTTO_URL, SOTTO_API_KEY and SOTTO_CLIP";

test("upload with progress, wait on the events, fetch, export, list, delete", { skip, timeout: 300_000 }, async () => {
  const sotto = new SottoClient(SOTTO_URL, SOTTO_API_KEY);
  const sent = [];
  const job = await sotto.upload(SOTTO_CLIP, { language: "en" }, { onProgress: (n, total) => sent.push([n, total]) });
  assert.equal(job.state, "queued");
  assert.ok(sent.length > 0);
  const [lastSent, total] = sent.at(-1);
  assert.equal(lastSent, total);

  const seen = [];
  const done = await sotto.wait(job.job_id, { onProgress: (j) => seen.push(j.state) });
  assert.equal(done.state, "done");
  assert.equal(seen.at(-1), "done");

  const doc = await sotto.transcript(done.transcript_id);
  assert.match(doc.text.toLowerCase(), /quick brown fox/);
  assert.ok(doc.segments.length > 0 && doc.segments[0].words.length > 0);

  const srt = await sotto.export(doc.id, "srt");
  assert.equal(typeof srt, "string");
  assert.match(srt, /^1\n00:00:\d\d,\d{3} --> /);
  const pdf = await sotto.export(doc.id, "pdf");
  assert.ok(pdf instanceof Uint8Array && new TextDecoder().decode(pdf.slice(0, 5)) === "%PDF-");

  const page = await sotto.list({ limit: 10 });
  assert.deepEqual(page.items.map((t) => t.id), [doc.id]);
  const hits = await sotto.search("fox");
  assert.ok(hits.total >= 1 && hits.items[0].transcript_id === doc.id);

  await sotto.delete(doc.id);
  await assert.rejects(sotto.transcript(doc.id), (err) => err instanceof SottoError && err.status === 404);
});

test("a multipart upload (FormData) of bytes, and refusals as SottoError", { skip, timeout: 120_000 }, async () => {
  const sotto = new SottoClient(SOTTO_URL, SOTTO_API_KEY);
  const bytes = await readFile(SOTTO_CLIP);
  await assert.rejects(
    sotto.upload(bytes, { model: "nope" }, { filename: "clip.wav" }),
    (err) => err instanceof SottoError && err.status === 400 && /unknown model/.test(err.detail),
  );
  const job = await sotto.upload(new Blob([bytes], { type: "audio/wav" }), { language: "en" }, { filename: "clip.wav" });
  assert.equal(job.filename, "clip.wav");
  const cancelled = await sotto.cancel(job.job_id);
  assert.ok(cancelled.cancel_requested || ["cancelled", "done"].includes(cancelled.state));

  const stranger = new SottoClient(SOTTO_URL, "sotto_wrong_key");
  await assert.rejects(stranger.list(), (err) => err instanceof SottoError && err.status === 401);
});
