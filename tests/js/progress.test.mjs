// The progress line's wording of the time left (appliance/web/static/progress-0.4.js), and its count
// down between the server's reports. Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const source = readFileSync(new URL("../../appliance/web/static/progress-0.4.js", import.meta.url), "utf8");
const messages = readFileSync(new URL("../../appliance/web/static/i18n-0.1.js", import.meta.url), "utf8");
const window = {};  // no catalog script: the English messages, with their placeholders filled in
vm.runInNewContext(messages, { window });
vm.runInNewContext(source, { window, setInterval, clearInterval, Date });
const { describe, timeLeft, countedDown } = window.SottoProgress;

test("the time left reads the way people say it", () => {
  assert.equal(timeLeft(null), "");
  assert.equal(timeLeft(3), "almost done");
  assert.equal(timeLeft(42.4), "about 42 s left");
  assert.equal(timeLeft(90), "about 2 min left");
  assert.equal(timeLeft(3720), "about 1 h 2 min left");
});

test("a running job says its stage, percentage and time left; an ended one only how it ended", () => {
  assert.equal(describe({ state: "running", stage: "transcribing", progress: 0.5, eta_seconds: 30 }), "Transcribing 50%, about 30 s left");
  assert.equal(describe({ state: "running", stage: "decoding", progress: 0, eta_seconds: null }), "Converting 0%");
  assert.equal(describe({ state: "failed", progress: 0.5, eta_seconds: 30 }), "Failed");
});

test("between reports the estimate counts down, never below zero, and only while running", () => {
  const job = { state: "running", stage: "transcribing", progress: 0.5, eta_seconds: 100 };
  assert.ok(Math.abs(countedDown(job, Date.now() - 30000).eta_seconds - 70) < 1);
  assert.equal(countedDown(job, Date.now() - 500000).eta_seconds, 0);
  assert.equal(job.eta_seconds, 100);  // the report itself is left as it was
  const queued = { state: "queued", eta_seconds: null };
  assert.equal(countedDown(queued, 0), queued);
});
