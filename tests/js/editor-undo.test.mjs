// Undo and redo restore the whole state before (or after) every kind of step: text, speakers and their
// names, segment notes and the transcript's note, timing, title, and the segment structure. The server
// is the browser's port of its editing operations, so what is checked is what would be saved.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as M from "../../appliance/web/static/editor/model-0.2.js";
import { History } from "../../appliance/web/static/editor/undo-0.1.js";
import { Server, content, restoreOn } from "./editor-support.mjs";

const seg = (m, sid) => M.segOf(m, sid);
const KINDS = {
  "edit a word": (m) => [M.segmentOp(M.editText(seg(m, 1), "the quick brown vixen").seg)],
  "split a segment": () => [{ op: "split", sid: 1, at: 2 }],
  "merge across speakers": () => [{ op: "merge", sid: 1 }],
  "merge with notes on both": (m) => [M.segmentOp(M.withFields(seg(m, 2), { note: "first" })), M.segmentOp(M.withFields(seg(m, 3), { note: "second" })), { op: "merge", sid: 2 }],
  "reassign a speaker's run": (m) => M.speakerRun(m, 2, false).map((sid) => M.segmentOp(M.withFields(seg(m, sid), { speaker: "S1" }))),
  "no speaker for one segment": (m) => [M.segmentOp(M.withFields(seg(m, 4), { speaker: null }))],
  "a new speaker for a segment": (m) => [{ op: "add_speaker", key: "S3", name: "Grace" }, M.segmentOp(M.withFields(seg(m, 2), { speaker: "S3" }))],
  "rename a speaker": () => [{ op: "rename_speaker", speaker: "S2", name: "Bob" }],
  "rename back to the label": () => [{ op: "rename_speaker", speaker: "S1", name: "" }],
  "add a speaker": () => [{ op: "add_speaker", key: "S3", name: "Grace" }],
  "merge two speakers": () => [{ op: "merge_speakers", from: "S2", into: "S1" }],
  "merge speakers the other way": () => [{ op: "merge_speakers", from: "S1", into: "S2" }],
  "change timing": (m) => M.retime(m, 2, 2500, 5600).segments.map(M.segmentOp),
  "a note on a segment": (m) => [M.segmentOp(M.withFields(seg(m, 3), { note: "Ask about Stella." }))],
  "the transcript's note": () => [{ op: "note", text: "A different note" }],
  "the title": () => [{ op: "title", text: "Renamed interview" }],
  "replace all": (m) => M.findWords(m, "the").map((f) => f.sid).filter((s, i, a) => a.indexOf(s) === i).map((sid) => M.segmentOp(M.replaceIn(seg(m, sid), "the", "a", null))),
  "empty a segment's text": (m) => [M.segmentOp(M.editText(seg(m, 3), "").seg)],
};

// The page's undo and redo: restore, renumber the sids of segments the server made anew, move the step.
function traveller(server, history, start) {
  const t = {
    m: start,
    go(back) {
      const s = back ? history.undo() : history.redo();
      const { model, plan } = restoreOn(server, t.m, M.revert(M.snapshot(t.m), s.from, s.to));
      history.renumber(plan.sids, (x, sid) => M.withFields(x, { sid }));
      if (back) history.undone(s.step); else history.redone(s.step);
      t.m = model;
    },
  };
  return t;
}

for (const [kind, ops] of Object.entries(KINDS)) {
  test(`undo and redo: ${kind}`, () => {
    const server = new Server();
    const history = new History();
    const m0 = server.model();
    const before = M.snapshot(m0);
    server.apply(ops(m0));
    const after = M.snapshot(server.model());
    history.record(before, after);
    assert.notDeepEqual(content(after), content(before), "the step changed something");
    const t = traveller(server, history, server.model());
    t.go(true);
    assert.deepEqual(content(t.m), content(before));
    t.go(false);
    assert.deepEqual(content(t.m), content(after));
    t.go(true);
    assert.deepEqual(content(t.m), content(before), "and undone again");
  });
}

test("a chain of every kind undone back to the start and redone to the end", () => {
  const server = new Server();
  const history = new History();
  const states = [];
  let m = server.model();
  for (const ops of Object.values(KINDS)) {
    const before = M.snapshot(m);
    let batch;
    try { batch = ops(m); } catch { continue; }  // a kind whose segment an earlier step merged away
    try { server.apply(batch); } catch { continue; }
    m = server.model();
    history.record(before, M.snapshot(m));
    states.push(content(before));
  }
  const end = content(m);
  assert.ok(states.length >= 12, `${states.length} steps`);
  const t = traveller(server, history, m);
  for (let i = states.length - 1; i >= 0; i--) {
    t.go(true);
    assert.deepEqual(content(t.m), states[i], `undo back to step ${i}`);
  }
  assert.ok(!history.canUndo);
  for (let i = 0; i < states.length; i++) t.go(false);
  assert.deepEqual(content(t.m), end);
});

test("a restore that changes nothing sends nothing", () => {
  const server = new Server();
  const m = server.model();
  assert.deepEqual(M.structureOps(M.snapshot(m), M.snapshot(m)), []);
  const plan = M.restoreOps(M.snapshot(m), M.snapshot(m));
  assert.deepEqual([plan.ops, plan.removals, plan.sids.size], [[], [], 0]);
});

test("structure: split pieces keep their order and words; empty pieces get a placeholder until step two", () => {
  const server = new Server();
  const m = server.model();
  const a = M.withFields(m.segments[0], { words: m.segments[0].words.slice(0, 1), e: 400 });
  const b = M.withFields(m.segments[0], { sid: 90, words: [], s: 500, e: 900, speaker: "S2", note: "empty" });
  const c = M.withFields(m.segments[0], { sid: 91, words: m.segments[0].words.slice(1), s: 1000 });
  const target = { ...M.snapshot(m), segments: [a, b, c, ...m.segments.slice(1)] };
  const { model, plan } = restoreOn(server, m, target);
  assert.deepEqual(content(model), content(target));
  assert.deepEqual([...plan.sids.keys()], [90, 91]);
  assert.ok(!model.segments.some((s) => s.words.some((w) => w.t === "…")));
});

test("structure: the first segments removed, and all but one", () => {
  for (const keep of [[3], [4], [2, 4], [1]]) {
    const server = new Server();
    const m = server.model();
    const target = { ...M.snapshot(m), segments: m.segments.filter((s) => keep.includes(s.sid)) };
    const { model } = restoreOn(server, m, target);
    assert.deepEqual(content(model), content(target), `keeping ${keep}`);
  }
});

test("revert carries one step over a change someone else made meanwhile", () => {
  const server = new Server();
  const m0 = server.model();
  const before = M.snapshot(m0);
  server.apply([{ op: "split", sid: 1, at: 2 }]);
  const after = M.snapshot(server.model());
  // Someone else corrects the last segment and renames a speaker.
  server.apply([M.segmentOp(M.editText(M.segOf(server.model(), 4), "and bring those things with her").seg), { op: "rename_speaker", speaker: "S2", name: "Bob" }]);
  const now = server.model();
  const undone = restoreOn(server, now, M.revert(M.snapshot(now), after, before)).model;
  assert.equal(undone.segments.length, 4);
  assert.equal(undone.segments[0].words.map((w) => w.t).join(" "), "the quick brown fox");
  assert.equal(undone.segments[3].words.map((w) => w.t).join(" "), "and bring those things with her");
  assert.equal(M.speakerName(undone, "S2"), "Bob");
});

test("History: limit, redo cleared by a new step, failed restores leave the step", () => {
  const h = new History(3);
  const s = (n) => ({ title: String(n), note: "", speakers: [], segments: [] });
  for (let i = 0; i < 5; i++) h.record(s(i), s(i + 1));
  assert.equal(h.past.length, 3);
  let u = h.undo();
  assert.equal(u.to.title, "4"); assert.equal(u.from.title, "5");
  assert.equal(h.undo().step, u.step, "not moved until undone()");
  h.undone(u.step);
  assert.ok(h.canRedo);
  const r = h.redo();
  assert.equal(r.to.title, "5");
  h.record(s(9), s(10));
  assert.ok(!h.canRedo);
  u = h.undo(); h.undone(u.step); h.undone(u.step);  // twice: the second finds nothing to take
  assert.equal(h.future.length, 2);
});

test("History.renumber renames sids in every kept state", () => {
  const h = new History();
  const segA = Object.freeze({ sid: 5, words: [] }), segB = Object.freeze({ sid: 6, words: [] });
  h.record({ segments: [segA] }, { segments: [segA, segB] });
  h.renumber(new Map([[6, 16]]), (x, sid) => ({ ...x, sid }));
  assert.deepEqual(h.past[0].after.segments.map((x) => x.sid), [5, 16]);
  assert.equal(h.past[0].before.segments[0], segA, "untouched states keep their objects");
});
