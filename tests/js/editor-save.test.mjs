// Autosave: batching, one request in flight, conflict, offline retry, failure, settle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Saver } from "../../appliance/web/static/editor/save-0.2.js";

const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const failure = (status, message = "no") => Object.assign(new Error(message), { status });

function setup(answers = []) {
  const calls = [], states = [], conflicts = [];
  const model = { revision: 1 };
  const backend = {
    async save(ops, base, options) {
      calls.push({ ops, base, options });
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return { revision: base + 1, rebased_over: answer === "rebased" ? ["s:9"] : [], updated_at: "2024-01-01T10:00:00Z" };
    },
  };
  const saver = new Saver({ backend, model, delay: 5, retry: 5, show: (t, c) => states.push([t, c]), conflictShown: (m) => conflicts.push(m) });
  return { saver, calls, states, conflicts, model };
}

test("changes close together go out as one batch against the last revision", async () => {
  const { saver, calls, model, states } = setup();
  saver.queue([{ op: "note", text: "a" }]);
  saver.queue([{ op: "title", text: "b" }]);
  assert.equal(states[0][0], "Unsaved changes");
  await wait(30);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].ops.map((o) => o.op), ["note", "title"]);
  assert.equal(calls[0].base, 1); assert.equal(model.revision, 2);
  assert.match(states.at(-1)[0], /^Saved /);
  assert.ok(!saver.unsaved);
});

test("a rebased save says so", async () => {
  const { saver, states } = setup(["rebased"]);
  saver.queue([{ op: "note", text: "a" }]);
  await saver.settle();
  assert.match(states.at(-1)[0], /^Saved \(merged with another edit\)/);
});

test("a conflict keeps the batch, stops saving, and force saves it", async () => {
  const { saver, calls, states, conflicts, model } = setup([failure(409, "changed elsewhere")]);
  saver.queue([{ op: "note", text: "mine" }]);
  await wait(30);
  assert.deepEqual(states.at(-1), ["Conflict", "conflict"]);
  assert.deepEqual(conflicts, ["changed elsewhere"]);
  saver.queue([{ op: "title", text: "more" }]);
  await wait(30);
  assert.equal(calls.length, 1, "no save while in conflict");
  await assert.rejects(saver.settle(), /not saved yet/);
  await saver.flush({ force: true });
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1].ops.map((o) => o.op), ["note", "title"]);
  assert.equal(calls[1].options.force, true);
  assert.equal(conflicts.at(-1), null);
  assert.equal(model.revision, 2);
});

test("offline retries on its own; another failure waits for the next change", async () => {
  const { saver, calls, states } = setup([failure(0), undefined]);
  saver.queue([{ op: "note", text: "a" }]);
  await wait(40);
  assert.equal(calls.length, 2);
  assert.ok(states.some(([t]) => t === "Offline (retrying)"));
  assert.match(states.at(-1)[0], /^Saved/);

  const other = setup([failure(400, "bad op"), undefined]);
  other.saver.queue([{ op: "note", text: "a" }]);
  await wait(30);
  assert.deepEqual(other.states.at(-1), ["Save failed: bad op", "failed"]);
  assert.equal(other.calls.length, 1);
  other.saver.queue([{ op: "note", text: "b" }]);
  await wait(30);
  assert.equal(other.calls.length, 2);
  assert.deepEqual(other.calls[1].ops.map((o) => o.text), ["a", "b"]);
});

test("now() saves after what was queued and says whether it worked; drop() forgets", async () => {
  const { saver, calls } = setup([undefined, undefined, failure(409)]);
  saver.queue([{ op: "note", text: "first" }]);
  assert.equal(await saver.now([{ op: "split", sid: 1, at: 1 }]), true);
  assert.deepEqual(calls.map((c) => c.ops[0].op), ["note", "split"]);
  assert.equal(await saver.now([{ op: "merge", sid: 1 }]), false);
  saver.drop();
  assert.ok(!saver.unsaved);
});
