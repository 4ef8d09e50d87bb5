// The transcript's DOM from the model, built with a stand-in document.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as M from "../../appliance/web/static/editor/model-0.2.js";
import { colourMap, renderSegment, speakerItems, talkTimes, wordSpan } from "../../appliance/web/static/editor/render-0.2.js";
import { Server, fakeDocument as doc } from "./editor-support.mjs";

const clock = (ms) => `${Math.floor(ms / 1000)}s`;
const ctx = (m, extra = {}) => ({ editable: true, colours: colourMap(m), clock, name: (id) => M.speakerName(m, id), prevSpeaker: null, ...extra });

test("a word: its times, low confidence unless edited, estimated", () => {
  assert.equal(wordSpan(doc, { t: "fox", s: 1500, e: 1900, c: 0.9 }).html(), '<span class="w" data-s="1500" data-e="1900">fox</span>');
  assert.equal(wordSpan(doc, { t: "fox", s: 0, e: 1, c: 0.3 }).className, "w lc");
  assert.equal(wordSpan(doc, { t: "fox", s: 0, e: 1, c: 0.3, edited: true }).className, "w");
  assert.equal(wordSpan(doc, { t: "fox", s: 0, e: 1, c: null, est: true }).className, "w est");
});

test("a segment: id and times, time and speaker buttons, words separated by spaces, the note", () => {
  const m = new Server().model();
  const seg = M.withFields(m.segments[1], { note: "Ask <Stella>" });
  const el = renderSegment(doc, seg, ctx(m));
  assert.equal(el.id, "s-2"); assert.equal(el.className, "seg spk-1");
  assert.deepEqual(el.dataset, { sid: 2, s: 3000, e: 5500 });
  assert.equal(el.all("seg-text")[0].textContent, "jumps over the lazy dog");
  assert.equal(el.all("w").length, 5);
  assert.equal(el.all("seg-time")[0].textContent, "3s");
  assert.equal(el.all("seg-time")[0].title, "Play from here (Alt+click: change timing)");
  const spk = el.all("seg-spk")[0];
  assert.equal(spk.textContent, "Speaker 2"); assert.equal(spk.attributes["aria-haspopup"], "dialog");
  assert.equal(el.all("seg-note")[0].textContent, "Note: Ask <Stella>");
  assert.ok(el.html().includes("Note: Ask &lt;Stella>"), "text, never markup");
  assert.ok(!el.html().includes("data-action"), "no segment tools in the text's flow (they would move it)");
  assert.deepEqual([el.all("seg-time")[0].tabIndex, spk.tabIndex], [-1, -1], "the transcript is one Tab stop");
});

test("a segment: the same speaker again is hidden; read-only has no controls to change it", () => {
  const m = new Server().model();
  const again = renderSegment(doc, m.segments[2], ctx(m, { prevSpeaker: "S2" }));
  assert.equal(again.all("seg-spk")[0].className, "seg-spk same");
  const ro = renderSegment(doc, m.segments[2], ctx(m, { editable: false }));
  assert.equal(ro.all("seg-spk")[0].disabled, true);
  assert.equal(ro.all("seg-time")[0].title, "Play from here");
  const nobody = renderSegment(doc, M.withFields(m.segments[2], { speaker: null }), ctx(m, { editable: false }));
  assert.equal(nobody.all("seg-spk").length, 0);
  assert.equal(renderSegment(doc, M.withFields(m.segments[2], { speaker: null }), ctx(m)).all("seg-spk")[0].textContent, "No speaker");
});

test("speaker list: swatch colour, name, talk time, rename for editors", () => {
  const m = new Server().model();
  assert.deepEqual([...talkTimes(m)], [["S1", 5000], ["S2", 4000]]);
  const items = speakerItems(doc, m, { editable: true, colours: colourMap(m), clock });
  assert.equal(items.length, 2);
  assert.equal(items[0].html(), '<li data-speaker="S1"><span class="swatch spk-0"></span><span class="spk-name">Ada</span><span class="muted">5s</span>'
    + '<button class="link spk-rename" aria-label="Rename Ada">Rename</button></li>');
  assert.equal(speakerItems(doc, m, { editable: false, colours: colourMap(m), clock })[1].all("spk-rename").length, 0);
  m.speakers = [];
  assert.equal(speakerItems(doc, m, { editable: true, colours: new Map(), clock })[0].textContent, "No speakers identified.");
});

test("speaker colours cycle through twelve", () => {
  const m = { speakers: Array.from({ length: 14 }, (_, i) => ({ id: `S${i + 1}` })) };
  assert.equal(colourMap(m).get("S13"), 0);
  assert.equal(colourMap(m).get("S12"), 11);
});

test("a segment whose speaker the engine was unsure of says so, even when the same speaker continues", () => {
  const m = new Server().model();
  const doubtful = renderSegment(doc, M.withFields(m.segments[2], { sc: 0.6 }), ctx(m, { prevSpeaker: "S2" }));
  const spk = doubtful.all("seg-spk")[0];
  assert.equal(spk.className, "seg-spk same doubt");
  assert.match(spk.title, /not certain \(60%/);
  const sure = renderSegment(doc, M.withFields(m.segments[2], { sc: 0.9 }), ctx(m));
  assert.ok(!sure.all("seg-spk")[0].className.includes("doubt"));
  assert.equal(M.modelFrom({ id: "t", speakers: [], segments: [{ sid: 1, start: 0, end: 1, words: [], speaker_confidence: 0.5 }] }, true).segments[0].sc, 0.5);
});
