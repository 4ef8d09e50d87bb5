// The editor's operations applied to a decrypted transcript document, in the browser: the same meaning
// as appliance/transcripts/editing.py has on the server's rows (segment, split, merge, rename_speaker, add_speaker,
// merge_speakers, note, title), so the editor cannot tell a private transcript from a standard one.
// The document has the API's transcript shape; times are seconds. No DOM here (tests run it under node).

export class EditError extends Error {}

// The page's language (static/i18n-0.1.js); under node --test, the English with its values filled in.
const t = (message, values) => (globalThis.SottoI18n ? globalThis.SottoI18n.t(message, values)
  : message.replace(/\{([a-z_0-9]+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole)));

const MAX_TEXT = 20000;
const round3 = (x) => Math.round(x * 1000) / 1000;

function text(value, name, limit = MAX_TEXT) {
  if (typeof value !== "string") throw new EditError(t("{name} must be a string", { name }));
  if (value.length > limit) throw new EditError(t("{name} is longer than {limit} characters", { name, limit }));
  if (/[\u0000-\u0008\u000b-\u001f]/.test(value)) throw new EditError(t("{name} contains control characters", { name }));
  return value;
}

function time(value, name, duration) {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new EditError(t("{name} must be a number of seconds", { name }));
  if (value < 0 || value > duration + 1) throw new EditError(t("{name} must lie within the recording", { name }));
  return round3(value);
}

function words(list, duration) {
  if (!Array.isArray(list) || list.length > 5000) throw new EditError(t("words must be a list of at most 5000 words"));
  return list.map((w, i) => {
    const word = text(w.word, `words[${i}].word`, 200).trim();
    if (!word || /\s/.test(word)) throw new EditError(t("words[{i}].word must be one word", { i }));
    const start = time(w.start, `words[${i}].start`, duration), end = time(w.end, `words[${i}].end`, duration);
    if (end < start) throw new EditError(t("words[{i}] ends before it starts", { i }));
    return { start, end, word: " " + word, probability: w.probability ?? null, speaker: null, edited: !!w.edited, estimated: !!w.estimated };
  });
}

const joined = (ws) => (ws.length ? " " + ws.map((w) => w.word.trim()).join(" ") : "");

/** Give a document what editing needs: segment sids (stable ids), notes, a title, the next free sid. */
export function normalise(doc, fallbackTitle) {
  doc.speakers = doc.speakers || [];
  doc.note = doc.note || "";
  doc.title = doc.title || fallbackTitle || "Transcript";
  let next = 1;
  for (const s of doc.segments) if (Number.isInteger(s.sid)) next = Math.max(next, s.sid + 1);
  for (const s of doc.segments) {
    if (!Number.isInteger(s.sid)) s.sid = next++;
    s.note = s.note || "";
    s.words = s.words || [];
  }
  doc.next_sid = Math.max(doc.next_sid || 0, next);
  return doc;
}

class Batch {
  constructor(doc) { this.doc = doc; this.duration = Number(doc.duration) || 0; }
  index(sid) {
    if (!Number.isInteger(sid)) throw new EditError(t("sid must be a segment's sid (an integer)"));
    const i = this.doc.segments.findIndex((s) => s.sid === sid);
    if (i < 0) throw new EditError(t("no segment with sid {sid} in this transcript", { sid }));
    return i;
  }
  keys() { return new Set(this.doc.speakers.map((s) => s.id)); }
  setWords(seg, ws) { seg.words = ws.map((w) => ({ ...w, speaker: seg.speaker })); seg.text = joined(ws); }

  segment(op) {
    const seg = this.doc.segments[this.index(op.sid)];
    if ("speaker" in op) {
      if (op.speaker !== null && !this.keys().has(op.speaker)) throw new EditError(t("no speaker {speaker} in this transcript", { speaker: op.speaker }));
      seg.speaker = op.speaker;
    }
    const start = "start" in op ? time(op.start, "start", this.duration) : seg.start;
    const end = "end" in op ? time(op.end, "end", this.duration) : seg.end;
    if (end < start) throw new EditError(t("a segment cannot end before it starts"));
    seg.start = start; seg.end = end;
    if ("note" in op) seg.note = text(op.note, "note");
    this.setWords(seg, "words" in op ? words(op.words, this.duration) : seg.words);
  }

  split(op) {
    const i = this.index(op.sid), seg = this.doc.segments[i];
    const at = op.at;
    if (!Number.isInteger(at) || at <= 0 || at >= seg.words.length) throw new EditError(t("at must be a word index between 1 and {last}", { last: seg.words.length - 1 }));
    const head = seg.words.slice(0, at), tail = seg.words.slice(at);
    const fresh = { ...seg, sid: this.doc.next_sid++, start: tail[0].start, end: seg.end, note: "" };
    seg.end = head[head.length - 1].end;
    this.setWords(seg, head);
    this.setWords(fresh, tail);
    this.doc.segments.splice(i + 1, 0, fresh);
  }

  merge(op) {
    const i = this.index(op.sid), seg = this.doc.segments[i], next = this.doc.segments[i + 1];
    if (!next) throw new EditError(t("the last segment has no next segment to merge with"));
    seg.end = Math.max(seg.end, next.end);
    seg.note = [seg.note, next.note].filter(Boolean).join("\n");
    this.setWords(seg, seg.words.concat(next.words));
    this.doc.segments.splice(i + 1, 1);
  }

  rename_speaker(op) {
    const s = this.doc.speakers.find((x) => x.id === op.speaker);
    if (!s) throw new EditError(t("no speaker {speaker} in this transcript", { speaker: op.speaker }));
    s.display_name = text(op.name ?? "", "name", 100).trim() || null;
  }

  add_speaker(op) {
    const keys = this.keys();
    let key = op.key;
    if (key == null) { let n = keys.size + 1; while (keys.has(`S${n}`)) n++; key = `S${n}`; }
    if (typeof key !== "string" || !/^S[1-9][0-9]{0,3}$/.test(key) || keys.has(key)) throw new EditError(t("key must be an unused speaker key such as 'S3'"));
    this.doc.speakers.push({ id: key, label: `Speaker ${key.slice(1)}`, display_name: text(op.name ?? "", "name", 100).trim() || null });
  }

  merge_speakers(op) {
    const keys = this.keys();
    if (!keys.has(op.from) || !keys.has(op.into) || op.from === op.into) throw new EditError(t("from and into must be two different speakers of this transcript"));
    for (const seg of this.doc.segments) {
      if (seg.speaker === op.from) seg.speaker = op.into;
      for (const w of seg.words) if (w.speaker === op.from) w.speaker = op.into;
    }
    this.doc.speakers = this.doc.speakers.filter((s) => s.id !== op.from);
  }

  note(op) { this.doc.note = text(op.text, "note"); }

  title(op) {
    const title = text(op.text, "title", 200).trim();
    if (!title) throw new EditError(t("a title cannot be empty"));
    this.doc.title = title;
  }
}

const OPS = new Set(["segment", "split", "merge", "rename_speaker", "add_speaker", "merge_speakers", "note", "title"]);

/** Apply a batch to `doc` in place (callers pass a copy: a failing batch leaves it half-changed). */
export function applyOps(doc, ops) {
  if (!Array.isArray(ops) || !ops.length || ops.length > 2000) throw new EditError(t("ops must be a list of 1 to 2000 operations"));
  const batch = new Batch(doc);
  ops.forEach((op, i) => {
    if (!op || !OPS.has(op.op)) throw new EditError(t("ops[{i}].op is not an operation", { i }));
    batch[op.op](op);
  });
  doc.segments.forEach((s, i) => { s.id = i; });
  doc.text = doc.segments.map((s) => s.text.trim()).filter(Boolean).join(" ");
  return doc;
}
