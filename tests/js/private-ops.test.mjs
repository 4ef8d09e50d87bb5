// The browser's port of the editor's operations (appliance/editing.py) on a decrypted document, and the
// exports made in the browser. Run: node --test tests/js/   (tests/web/test_static_js.py runs the directory)

import { test } from "node:test";
import assert from "node:assert/strict";
import { applyOps, normalise, EditError } from "../../appliance/web/static/private-ops-0.2.js";
import { render, snapshot } from "../../appliance/web/static/private-export-0.2.js";

function doc() {
  const w = (word, start, end) => ({ word: ` ${word}`, start, end, probability: 0.9, speaker: "S1", edited: false, estimated: false });
  return normalise({
    id: "t1", text: "hello world again there", duration: 10, note: "",
    speakers: [{ id: "S1", label: "Speaker 1", display_name: null }, { id: "S2", label: "Speaker 2", display_name: null }],
    segments: [
      { id: 0, start: 0, end: 1, text: " hello world", speaker: "S1", words: [w("hello", 0, 0.5), w("world", 0.5, 1)] },
      { id: 1, start: 2, end: 3, text: " again there", speaker: "S2", words: [w("again", 2, 2.5), w("there", 2.5, 3)] },
    ],
  }, "fallback");
}

test("normalise gives stable sids and a title", () => {
  const d = doc();
  assert.deepEqual(d.segments.map((s) => s.sid), [1, 2]);
  assert.equal(d.title, "fallback");
  assert.equal(d.next_sid, 3);
});

test("segment: corrected words, marked edited, text rebuilt", () => {
  const d = applyOps(doc(), [{ op: "segment", sid: 1, words: [
    { word: "hullo", start: 0, end: 0.5, probability: 0.9, edited: true }, { word: "world", start: 0.5, end: 1, probability: 0.9 }] }]);
  assert.equal(d.segments[0].text, " hullo world");
  assert.equal(d.segments[0].words[0].edited, true);
  assert.equal(d.text, "hullo world again there");
});

test("split and merge are inverses", () => {
  const split = applyOps(doc(), [{ op: "split", sid: 1, at: 1 }]);
  assert.deepEqual(split.segments.map((s) => s.text), [" hello", " world", " again there"]);
  assert.equal(split.segments[1].sid, 3);
  assert.equal(split.segments[0].end, 0.5);
  const merged = applyOps(split, [{ op: "merge", sid: 1 }]);
  assert.deepEqual(merged.segments.map((s) => s.text), [" hello world", " again there"]);
  assert.equal(merged.segments[0].end, 1);
});

test("speakers: add, rename, merge", () => {
  const d = applyOps(doc(), [{ op: "add_speaker", key: "S3", name: "Ada" }, { op: "segment", sid: 2, speaker: "S3" },
    { op: "rename_speaker", speaker: "S1", name: "Bea" }, { op: "merge_speakers", from: "S3", into: "S1" }]);
  assert.deepEqual(d.speakers.map((s) => [s.id, s.display_name]), [["S1", "Bea"], ["S2", null]]);
  assert.equal(d.segments[1].speaker, "S1");
});

test("note and title; bad batches are refused", () => {
  const d = applyOps(doc(), [{ op: "note", text: "check" }, { op: "title", text: "Interview" }]);
  assert.equal(d.note, "check");
  assert.equal(d.title, "Interview");
  assert.throws(() => applyOps(doc(), [{ op: "title", text: "  " }]), EditError);
  assert.throws(() => applyOps(doc(), [{ op: "split", sid: 1, at: 0 }]), EditError);
  assert.throws(() => applyOps(doc(), [{ op: "segment", sid: 9 }]), EditError);
  assert.throws(() => applyOps(doc(), [{ op: "add_speaker", key: "S1" }]), EditError);
  assert.throws(() => applyOps(doc(), [{ op: "drop_table" }]), EditError);
  assert.throws(() => applyOps(doc(), []), EditError);
});

test("exports made in the browser", async () => {
  const d = applyOps(doc(), [{ op: "rename_speaker", speaker: "S1", name: "Ada" }]);
  assert.equal(await render(d, "txt").text(), "[00:00] Ada: hello world\n\n[00:02] Speaker 2: again there\n");
  assert.match(await render(d, "srt").text(), /^1\n00:00:00,000 --> 00:00:01,000\nAda: hello world\n/);
  assert.match(await render(d, "vtt").text(), /^WEBVTT\n\n00:00:00\.000 --> 00:00:01\.000\nAda: hello world\n/);
  assert.equal(JSON.parse(await render(d, "json").text()).id, "t1");
  assert.throws(() => render(d, "docx"), /not available for private transcripts/);
  assert.deepEqual(Object.keys(snapshot(d).segments[0]), ["start", "end", "speaker", "text"]);
});
