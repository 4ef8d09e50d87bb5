// Shared by the editor's unit tests: a small transcript, a stand-in server that applies operations
// with the browser's port of the server's editing (private-ops), and a stand-in document for rendering.
import { applyOps, normalise } from "../../appliance/web/static/private-ops-0.2.js";
import { modelFrom, restoreOps, snapshot, structureOps } from "../../appliance/web/static/editor/model-0.2.js";

const word = (w, start, end, speaker) => ({ word: ` ${w}`, start, end, probability: 0.9, speaker, edited: false, estimated: false });
const seg = (speaker, start, text) => {
  const words = text.split(" ").map((w, i) => word(w, start + i * 0.5, start + i * 0.5 + 0.4, speaker));
  return { start, end: start + words.length * 0.5, text: " " + text, speaker, words };
};

export function transcript() {
  return normalise({
    id: "t1", revision: 1, duration: 60, note: "Transcript note", title: "Interview",
    speakers: [{ id: "S1", label: "Speaker 1", display_name: "Ada" }, { id: "S2", label: "Speaker 2", display_name: null }],
    segments: [
      seg("S1", 0, "the quick brown fox"),
      seg("S2", 3, "jumps over the lazy dog"),
      seg("S2", 6, "please call Stella"),
      seg("S1", 9, "and bring these things with her"),
    ],
  });
}

// The server: applies batches like appliance/transcripts/editing.py (new sids for split segments).
export class Server {
  constructor(doc = transcript()) { this.doc = doc; this.batches = []; }
  apply(ops) {
    if (!ops.length) return;
    this.batches.push(ops);
    this.doc = applyOps(structuredClone(this.doc), ops);
    this.doc.revision += 1;
  }
  model() { return modelFrom(structuredClone(this.doc), true); }
}

// Restore a state the way the page does: structure first (saved, reloaded), then every field.
export function restoreOn(server, model, target) {
  const shape = structureOps(snapshot(model), target);
  server.apply(shape);
  const plan = restoreOps(snapshot(shape.length ? server.model() : model), target);
  server.apply([...plan.ops, ...plan.removals]);
  return { model: server.model(), plan };
}

// A state's content without sids (new segments get new ones) and in speaker-id order.
export const content = (state) => ({
  title: state.title, note: state.note,
  speakers: state.speakers.map((s) => [s.id, s.name]).sort(),
  segments: state.segments.map((s) => ({ speaker: s.speaker, s: s.s, e: s.e, note: s.note, words: s.words.map((w) => [w.t, w.s, w.e, w.c, !!w.edited, !!w.est]) })),
});

// Just enough of a DOM for render-0.2.js.
class Text {
  constructor(text) { this.text = String(text); }
  get textContent() { return this.text; }
  html() { return this.text.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
}
class Element {
  constructor(tag) { this.tagName = tag; this.children = []; this.attributes = {}; this.dataset = {}; this.className = ""; }
  appendChild(child) { this.children.push(child); return child; }
  append(...children) { for (const c of children) this.appendChild(typeof c === "string" ? new Text(c) : c); }
  setAttribute(name, value) { this.attributes[name] = String(value); }
  set textContent(text) { this.children = [new Text(text)]; }
  get textContent() { return this.children.map((c) => c.textContent).join(""); }
  all(cls) { return [...(this.className.split(" ").includes(cls) ? [this] : []), ...this.children.flatMap((c) => (c instanceof Element ? c.all(cls) : []))]; }
  html() {
    const attrs = [
      this.id && `id="${this.id}"`, this.className && `class="${this.className}"`,
      ...Object.entries(this.dataset).map(([k, v]) => `data-${k}="${v}"`),
      ...Object.entries(this.attributes).map(([k, v]) => `${k}="${v}"`),
      this.disabled && "disabled", this.tabIndex != null && `tabindex="${this.tabIndex}"`,
    ].filter(Boolean);
    return `<${this.tagName}${attrs.map((a) => " " + a).join("")}>${this.children.map((c) => c.html()).join("")}</${this.tagName}>`;
  }
}
export const fakeDocument = { createElement: (tag) => new Element(tag), createTextNode: (text) => new Text(text) };
