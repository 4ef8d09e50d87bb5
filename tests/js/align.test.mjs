// The editor's text-to-timed-words mapping (appliance/web/static/align-0.1.js): the cases of the UI
// design guide, section 5. Run: node --test tests/js/   (tests/web/test_static_js.py runs the directory)

import { test } from "node:test";
import assert from "node:assert/strict";
import { matches, norm, realign } from "../../appliance/web/static/align-0.1.js";

const W = (t, s, e, c = 0.9) => ({ t, s, e, c, edited: false, est: false });
const OLD = [W("So", 1000, 1300), W("we", 1300, 1500), W("started", 1500, 2000), W("in", 2000, 2100), W("March.", 2100, 2600)];
const BOUNDS = { s: 1000, e: 2800 };
const times = (words) => words.map((w) => [w.t, w.s, w.e]);

test("norm ignores case, width and edge punctuation", () => {
  assert.equal(norm("«March.»"), "march");
  assert.equal(norm("ＡＢＣ"), "abc");
  assert.equal(norm("don't"), "don't");
});

test("a typo fix keeps the word's time and marks it edited", () => {
  const { words } = realign(OLD, "So we startet in March.", BOUNDS);
  const [, , fixed] = words;
  assert.deepEqual([fixed.t, fixed.s, fixed.e, fixed.edited, fixed.c], ["startet", 1500, 2000, true, null]);
  assert.deepEqual(times(words).map((x) => x[1]), [1000, 1300, 1500, 2000, 2100]);
  assert.equal(words[0].edited, false);
});

test("unchanged text changes nothing", () => {
  const { words, changedShare } = realign(OLD, "So we started in March.", BOUNDS);
  assert.deepEqual(words, OLD);
  assert.equal(changedShare, 0);
});

test("inserts at both ends share the gaps to the segment's bounds", () => {
  const { words } = realign(OLD, "Well so we started in March. Right", BOUNDS);
  assert.equal(words.length, 7);
  assert.deepEqual([words[0].t, words[0].s, words[0].e], ["Well", 1000, 1300]);  // no gap: the neighbour's span, estimated
  assert.equal(words[0].est, true);
  assert.deepEqual([words[6].t, words[6].s, words[6].e], ["Right", 2600, 2800]);
  assert.equal(words[6].est, false);
  assert.equal(words[1].s, 1000);  // "so" matched "So" (case-insensitive) and kept its time
});

test("deleting everything leaves no words", () => {
  const { words, changedShare } = realign(OLD, "   ", BOUNDS);
  assert.deepEqual(words, []);
  assert.equal(changedShare, 1);
});

test("merging two words spans both; splitting shares by length", () => {
  const merged = realign(OLD, "So westarted in March.", BOUNDS).words;
  assert.deepEqual(times(merged)[1], ["westarted", 1300, 2000]);
  const split = realign([W("cannot", 0, 700)], "can not", { s: 0, e: 700 }).words;
  assert.deepEqual(times(split), [["can", 0, 350], ["not", 350, 700]]);
});

test("punctuation-only edits keep every time", () => {
  const { words } = realign(OLD, "So, we started in March!", BOUNDS);
  assert.deepEqual(words.map((w) => [w.s, w.e]), OLD.map((w) => [w.s, w.e]));
  assert.deepEqual(words.map((w) => w.t), ["So,", "we", "started", "in", "March!"]);
  assert.equal(words[0].edited, true);
});

test("a substitution never steals an exact match's time", () => {
  // "we we started": the exact "we" keeps 1300-1500; the new one is inserted before it.
  const pairs = matches(["a", "b", "c"], ["a", "x", "c"]);
  assert.deepEqual(pairs, [[0, 0], [2, 2]]);
  const { words } = realign(OLD, "So we we started in March.", BOUNDS);
  assert.equal(words.filter((w) => w.t === "we" && w.s === 1300 && w.e === 1500).length, 1);
});
