// Selection: which word the keyboard is on (one Tab stop, arrow keys inside), and the segments a
// speaker change or a split selects.
import { test } from "node:test";
import assert from "node:assert/strict";
import { countsOf, keep, move } from "../../appliance/web/static/editor/nav-0.1.js";
import { Server } from "./editor-support.mjs";

const counts = [4, 5, 0, 6];

test("right and left move word by word across segments, and stop at the ends", () => {
  assert.deepEqual(move(counts, { seg: 0, word: 3 }, "ArrowRight"), { seg: 1, word: 0 });
  assert.deepEqual(move(counts, { seg: 1, word: 4 }, "ArrowRight"), { seg: 2, word: 0 }, "an empty segment is a stop");
  assert.deepEqual(move(counts, { seg: 2, word: 0 }, "ArrowRight"), { seg: 3, word: 0 });
  assert.deepEqual(move(counts, { seg: 3, word: 5 }, "ArrowRight"), { seg: 3, word: 5 });
  assert.deepEqual(move(counts, { seg: 3, word: 0 }, "ArrowLeft"), { seg: 2, word: 0 });
  assert.deepEqual(move(counts, { seg: 1, word: 0 }, "ArrowLeft"), { seg: 0, word: 3 });
  assert.deepEqual(move(counts, { seg: 0, word: 0 }, "ArrowLeft"), { seg: 0, word: 0 });
});

test("nine presses of right reach the tenth word", () => {
  let pos = { seg: 0, word: 0 };
  for (let i = 0; i < 9; i++) pos = move([4, 5, 6], pos, "ArrowRight");
  assert.deepEqual(pos, { seg: 2, word: 0 });
});

test("up and down go by segment, Home and End within it (with Ctrl: the whole transcript)", () => {
  assert.deepEqual(move(counts, { seg: 0, word: 2 }, "ArrowDown"), { seg: 1, word: 0 });
  assert.deepEqual(move(counts, { seg: 3, word: 2 }, "ArrowDown"), { seg: 3, word: 0 });
  assert.deepEqual(move(counts, { seg: 1, word: 2 }, "ArrowUp"), { seg: 0, word: 0 });
  assert.deepEqual(move(counts, { seg: 1, word: 2 }, "End"), { seg: 1, word: 4 });
  assert.deepEqual(move(counts, { seg: 1, word: 2 }, "Home"), { seg: 1, word: 0 });
  assert.deepEqual(move(counts, { seg: 1, word: 2 }, "End", { ctrl: true }), { seg: 3, word: 5 });
  assert.deepEqual(move(counts, { seg: 1, word: 2 }, "Home", { ctrl: true }), { seg: 0, word: 0 });
  assert.deepEqual(move(counts, { seg: 0, word: 0 }, "PageDown"), { seg: 3, word: 0 });
  assert.equal(move(counts, { seg: 0, word: 0 }, "a"), null);
  assert.equal(move([], { seg: 0, word: 0 }, "ArrowRight"), null);
});

test("a position out of range (the transcript changed) is brought back in", () => {
  assert.deepEqual(move(counts, { seg: 9, word: 9 }, "ArrowLeft"), { seg: 3, word: 4 });
});

test("keep: the same segment after the list changed, or the start", () => {
  const m = new Server().model();
  assert.deepEqual(countsOf(m), [4, 5, 3, 6]);
  assert.deepEqual(keep(m, 3, 7), { seg: 2, word: 2 });
  assert.deepEqual(keep(m, 99, 1), { seg: 0, word: 0 });
});
