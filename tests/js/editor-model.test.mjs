// The editor's model and operations, without a page. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import * as M from "../../appliance/web/static/editor/model-0.2.js";
import { Server } from "./editor-support.mjs";

const model = () => new Server().model();

test("modelFrom: milliseconds, speaker names, frozen segments", () => {
  const m = model();
  assert.deepEqual(m.speakers.map((s) => s.name), ["Ada", "Speaker 2"]);
  assert.deepEqual(m.segments[1].words[0], { t: "jumps", s: 3000, e: 3400, c: 0.9, edited: false, est: false });
  assert.ok(Object.isFrozen(m.segments[0]) && Object.isFrozen(m.segments[0].words[0]));
  assert.throws(() => { "use strict"; m.segments[0].speaker = "S2"; }, TypeError);
});

test("frozen: a server-rendered model gets frozen segments with notes", () => {
  const m = M.frozen({ segments: [{ sid: 1, speaker: null, s: 0, e: 10, words: [] }] });
  assert.equal(m.segments[0].note, "");
  assert.ok(Object.isFrozen(m.segments[0]));
});

test("segmentOp: seconds on the wire, every field", () => {
  const op = M.segmentOp(model().segments[0]);
  assert.equal(op.op, "segment"); assert.equal(op.sid, 1); assert.equal(op.speaker, "S1");
  assert.equal(op.start, 0); assert.equal(op.end, 2);
  assert.deepEqual(op.words[1], { word: "quick", start: 0.5, end: 0.9, probability: 0.9, edited: false, estimated: false });
});

test("editText keeps the times of unchanged words and marks the changed one", () => {
  const m = model();
  const { seg } = M.editText(m.segments[0], "the quick  brown vixen ");
  assert.deepEqual(seg.words.map((w) => w.t), ["the", "quick", "brown", "vixen"]);
  assert.equal(seg.words[3].edited, true); assert.equal(seg.words[3].s, 1500);
  assert.equal(seg.words[0].edited, false);
  assert.equal(m.segments[0].words[3].t, "fox", "the old version is untouched");
  assert.ok(M.sameText(m.segments[0], " the  quick brown fox"));
});

test("applySegments replaces by sid and returns the ops", () => {
  const m = model();
  const before = m.segments;
  const ops = M.applySegments(m, [M.withFields(m.segments[2], { note: "check" })]);
  assert.equal(ops.length, 1); assert.equal(ops[0].note, "check"); assert.equal(ops[0].sid, 3);
  assert.equal(m.segments[0], before[0]);
  assert.notEqual(m.segments[2], before[2]);
  assert.equal(before[2].note, "");
});

test("splitPoint: at a word boundary, and inside a word (which splits too)", () => {
  assert.deepEqual(M.splitPoint("the quick brown fox", "the quick "), { text: "the quick  brown fox", at: 2 });
  assert.deepEqual(M.splitPoint("the quick brown fox", "the qu"), { text: "the qu ick brown fox", at: 2 });
  const seg = model().segments[0];
  assert.ok(M.canSplit(seg, 2)); assert.ok(!M.canSplit(seg, 0)); assert.ok(!M.canSplit(seg, 4));
});

test("mergeQuestion asks only when the next segment has another speaker", () => {
  const m = model();
  assert.deepEqual(M.mergeQuestion(m, 1), { keep: "Ada", lose: "Speaker 2", words: 5 });
  assert.equal(M.mergeQuestion(m, 2), null);  // same speaker
  assert.equal(M.mergeQuestion(m, 4), null);  // no next segment
});

test("speakerRun: the run of consecutive segments, or only this one", () => {
  const m = model();
  assert.deepEqual(M.speakerRun(m, 2, false), [2, 3]);
  assert.deepEqual(M.speakerRun(m, 3, false), [2, 3]);
  assert.deepEqual(M.speakerRun(m, 3, true), [3]);
  assert.deepEqual(M.speakerRun(m, 1, false), [1]);
});

test("nextSpeakerKey skips keys in use", () => {
  const m = model();
  assert.equal(M.nextSpeakerKey(m), "S3");
  m.speakers.push({ id: "S3", name: "x", label: "Speaker 3" });
  assert.equal(M.nextSpeakerKey(m), "S4");
});

test("retime moves touching neighbours, flags overlaps, refuses nonsense", () => {
  const m = model();
  m.segments = m.segments.map((s, i) => (i === 1 ? M.withFields(s, { s: 2000 }) : s));  // touches the first
  const moved = M.retime(m, 2, 2500, 5500);
  assert.deepEqual(moved.segments.map((s) => [s.sid, s.s, s.e]), [[2, 2500, 5500], [1, 0, 2500]]);
  assert.equal(moved.overlaps, false);
  assert.equal(M.retime(m, 3, 5000, 8000).overlaps, true);
  assert.match(M.retime(m, 1, 3000, 2000).error, /start must come before the end/);
  assert.match(M.retime(m, 1, 0, 62000).error, /within the recording/);
});

test("findWords and replaceIn: case-insensitive, one word or all", () => {
  const m = model();
  assert.deepEqual(M.findWords(m, "THE"), [{ sid: 1, i: 0 }, { sid: 2, i: 2 }, { sid: 4, i: 2 }]);
  assert.deepEqual(M.findWords(m, "  "), []);
  assert.deepEqual(M.replaceIn(m.segments[1], "the", "a", 2).words.map((w) => w.t), ["jumps", "over", "a", "lazy", "dog"]);
  assert.deepEqual(M.replaceIn(m.segments[3], "e", "E", null).words.map((w) => w.t).join(" "), "and bring thEsE things with hEr");
  assert.deepEqual(M.replaceIn(m.segments[0], "fox.", "x", null).words.map((w) => w.t).join(" "), "the quick brown fox", "regex characters are literal");
});

test("sameState and snapshot: a snapshot shares segments and copies speakers", () => {
  const m = model();
  const a = M.snapshot(m);
  assert.equal(a.segments[0], m.segments[0]);
  m.speakers[0].name = "changed in place";
  assert.equal(a.speakers[0].name, "Ada");
  assert.ok(!M.sameState(a, M.snapshot(m)));
  m.speakers[0].name = "Ada";
  assert.ok(M.sameState(a, M.snapshot(m)));
});
