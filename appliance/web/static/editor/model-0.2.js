// The editor's model and every change to it, without the DOM (tests run it under `node --test`).
// Times are whole milliseconds here and seconds on the wire. Segment objects are frozen and replaced,
// never changed in place: an undo snapshot is then a shallow copy of the segment list, so two hundred
// of them cost two hundred arrays of references, not two hundred copies of a long transcript.
import { realign, tokens } from "../align-0.1.js";

// The page's language (static/i18n-0.1.js); under node --test, the English with its values filled in.
const t = (message, values) => (globalThis.SottoI18n ? globalThis.SottoI18n.t(message, values)
  : message.replace(/\{([a-z_0-9]+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole)));

const freeze = (seg) => {
  for (const w of seg.words) Object.freeze(w);
  Object.freeze(seg.words);
  return Object.freeze(seg);
};

// A model the server rendered into the page has the same shape; its segments are frozen here.
export function frozen(model) {
  model.segments = model.segments.map((s) => freeze({ ...s, note: s.note || "", words: s.words.map((w) => ({ ...w })) }));
  return model;
}

export const toSeconds = (ms) => Math.round(ms) / 1000;

// The editor's model (times in ms) from a transcript document (times in seconds).
export function modelFrom(doc, editable) {
  return {
    id: doc.id, revision: doc.revision, title: doc.title, note: doc.note || "", duration: doc.duration, editable,
    speakers: doc.speakers.map((s) => ({ id: s.id, name: s.display_name || s.label, label: s.label })),
    segments: doc.segments.map((s) => freeze({
      sid: s.sid, speaker: s.speaker, s: Math.round(s.start * 1000), e: Math.round(s.end * 1000), note: s.note || "",
      sc: s.speaker_confidence ?? null,
      words: s.words.map((w) => ({ t: w.word.trim(), s: Math.round(w.start * 1000), e: Math.round(w.end * 1000), c: w.probability, edited: !!w.edited, est: !!w.estimated })),
    })),
  };
}

export const segIndex = (model, sid) => model.segments.findIndex((s) => s.sid === sid);
export const segOf = (model, sid) => model.segments[segIndex(model, sid)];
export function speakerName(model, id) {
  const s = model.speakers.find((x) => x.id === id);
  return s ? s.name : id;
}

// A new version of a segment with some fields replaced.
export const withFields = (seg, fields) => freeze({ ...seg, ...fields, words: (fields.words || seg.words).map((w) => ({ ...w })) });

export function segmentOp(seg) {
  return {
    op: "segment", sid: seg.sid, speaker: seg.speaker, start: toSeconds(seg.s), end: toSeconds(seg.e), note: seg.note,
    words: seg.words.map((w) => ({ word: w.t, start: toSeconds(w.s), end: toSeconds(w.e), probability: w.c, edited: !!w.edited, estimated: !!w.est })),
  };
}

// Put new versions of segments into the model; returns the operations that save them.
export function applySegments(model, fresh) {
  const by = new Map(fresh.map((s) => [s.sid, s]));
  model.segments = model.segments.map((s) => by.get(s.sid) || s);
  return fresh.map(segmentOp);
}

// ---------- operations: each returns new segment versions (or the ops of a structural change) ----------

// The segment's words after its text was edited: unchanged words keep their times (align-0.1.js).
export function editText(seg, text) {
  const now = text.replace(/\s+/g, " ").trim();
  const { words, changedShare } = realign(seg.words, now, { s: seg.s, e: seg.e });
  return { seg: withFields(seg, { words }), changedShare };
}

export const sameText = (seg, text) => seg.words.map((w) => w.t).join(" ") === text.replace(/\s+/g, " ").trim();

// Enter in an edited segment: the text before the caret becomes the first segment. The caret may sit
// inside a word, which then splits too; returns the text to realign and the word index to split at.
export function splitPoint(full, head) {
  const text = (head + " " + full.slice(head.length)).trim();
  return { text, at: tokens(head).length };
}

export function canSplit(seg, at) { return at > 0 && at < seg.words.length; }

// Merging with the next segment keeps the first one's speaker: when the next has another speaker its
// words would silently change hands, so the editor asks first. Returns what to ask about, or null.
export function mergeQuestion(model, sid) {
  const i = segIndex(model, sid), seg = model.segments[i], next = model.segments[i + 1];
  if (!seg || !next || next.speaker === seg.speaker) return null;
  const name = (id) => (id ? speakerName(model, id) : t("no speaker"));
  return { keep: name(seg.speaker), lose: name(next.speaker), words: next.words.length };
}

// A speaker change applies to the run of consecutive segments with the same speaker unless onlyThis.
export function speakerRun(model, sid, onlyThis) {
  const i = segIndex(model, sid), who = model.segments[i].speaker;
  if (onlyThis) return [sid];
  let a = i, b = i;
  while (a > 0 && model.segments[a - 1].speaker === who) a--;
  while (b < model.segments.length - 1 && model.segments[b + 1].speaker === who) b++;
  return model.segments.slice(a, b + 1).map((s) => s.sid);
}

export function nextSpeakerKey(model) {
  const used = new Set(model.speakers.map((s) => s.id));
  let n = model.speakers.length + 1;
  while (used.has(`S${n}`)) n++;
  return `S${n}`;
}

// New timing for a segment. Neighbours that touched it move with it; overlaps are allowed but flagged.
// Returns {error} or {segments, overlaps}.
export function retime(model, sid, s, e) {
  const i = segIndex(model, sid), seg = model.segments[i];
  if (!(s >= 0 && e > s && e <= model.duration * 1000 + 1000)) return { error: t("The start must come before the end, within the recording.") };
  const out = [withFields(seg, { s, e })];
  const prev = model.segments[i - 1], next = model.segments[i + 1];
  if (prev && prev.e === seg.s && s > prev.s) out.push(withFields(prev, { e: s }));
  if (next && next.s === seg.e && e < next.e) out.push(withFields(next, { s: e }));
  const overlaps = !!((prev && s < prev.e && prev.e !== seg.s) || (next && e > next.s && next.s !== seg.e));
  return { segments: out, overlaps };
}

// Find: every word containing q (case-insensitive), in reading order.
export function findWords(model, q) {
  const needle = q.trim().toLowerCase(), found = [];
  if (!needle) return found;
  for (const seg of model.segments) seg.words.forEach((w, i) => { if (w.t.toLowerCase().includes(needle)) found.push({ sid: seg.sid, i }); });
  return found;
}

// Replace q by `by` in one word of the segment (only = its index) or in all of them.
export function replaceIn(seg, q, by, only) {
  const re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi");
  const words = seg.words.map((w) => w.t);
  if (only != null) words[only] = words[only].replace(re, by);
  else for (let i = 0; i < words.length; i++) words[i] = words[i].replace(re, by);
  return editText(seg, words.join(" ")).seg;
}

// ---------- whole states, for undo ----------

export function snapshot(model) {
  return { title: model.title, note: model.note, speakers: model.speakers.map((s) => ({ ...s })), segments: model.segments.slice() };
}

const sameWords = (a, b) => a.length === b.length && a.every((w, i) => {
  const v = b[i];
  return w.t === v.t && w.s === v.s && w.e === v.e && w.c === v.c && !!w.edited === !!v.edited && !!w.est === !!v.est;
});
export const sameSegment = (a, b) => a === b || (a.speaker === b.speaker && a.s === b.s && a.e === b.e && a.note === b.note && sameWords(a.words, b.words));
const sameSpeakers = (a, b) => a.length === b.length && a.every((s) => b.some((t) => t.id === s.id && t.name === s.name));

export function sameState(a, b) {
  return a.title === b.title && a.note === b.note && sameSpeakers(a.speakers, b.speakers) &&
    a.segments.length === b.segments.length && a.segments.every((s, i) => s.sid === b.segments[i].sid && sameSegment(s, b.segments[i]));
}

// What a step changed (from -> to), carried over onto `current`: equal to `to` when nothing else moved
// since, and otherwise keeps the parts someone else changed meanwhile (a reload can bring those in).
export function revert(current, from, to) {
  const fromBy = new Map(from.segments.map((s) => [s.sid, s])), toBy = new Map(to.segments.map((s) => [s.sid, s]));
  const segments = current.segments
    .filter((s) => !(fromBy.has(s.sid) && !toBy.has(s.sid)))
    .map((s) => (fromBy.has(s.sid) && toBy.has(s.sid) && !sameSegment(fromBy.get(s.sid), toBy.get(s.sid)) ? toBy.get(s.sid) : s));
  to.segments.forEach((s, i) => {
    if (fromBy.has(s.sid) || segments.some((x) => x.sid === s.sid)) return;
    let at = 0;  // after the nearest segment that precedes it in `to` and is still there
    for (let k = i - 1; k >= 0; k--) {
      const j = segments.findIndex((x) => x.sid === to.segments[k].sid);
      if (j >= 0) { at = j + 1; break; }
    }
    segments.splice(at, 0, s);
  });
  const fromSpk = new Map(from.speakers.map((s) => [s.id, s])), toSpk = new Map(to.speakers.map((s) => [s.id, s]));
  const speakers = current.speakers
    .filter((s) => !(fromSpk.has(s.id) && !toSpk.has(s.id)))
    .map((s) => (fromSpk.has(s.id) && toSpk.has(s.id) && fromSpk.get(s.id).name !== toSpk.get(s.id).name ? { ...toSpk.get(s.id) } : s));
  for (const s of to.speakers) if (!fromSpk.has(s.id) && !speakers.some((x) => x.id === s.id)) speakers.push({ ...s });
  return {
    title: from.title !== to.title ? to.title : current.title,
    note: from.note !== to.note ? to.note : current.note,
    speakers, segments,
  };
}

// Restoring a state is done with the ordinary operations, so it is saved (and conflicts) like any edit.
// Step one, structure: speakers the target has and the server lacks are added, segments it lacks are
// merged away, segments it has in addition are made by filling one segment with their words and
// splitting it. New segments get their sid from the server, so the caller saves these operations and
// reloads before step two (restoreOps), which sets every field by position. Empty when the shape matches.
const PLACEHOLDER = "…";  // a segment without words cannot be split off: it gets one, removed in step two

export function structureOps(current, target) {
  const ops = [];
  const have = new Set(current.speakers.map((s) => s.id));
  for (const s of target.speakers) if (!have.has(s.id)) ops.push({ op: "add_speaker", key: s.id, name: s.name });
  const T = target.segments;
  const tIndex = new Map(T.map((s, i) => [s.sid, i]));
  let last = -1;
  // Segments both sides have, in an order both agree on, keep their sid.
  const work = current.segments.map((s) => {
    const j = tIndex.get(s.sid);
    if (j != null && j > last) { last = j; return { sid: s.sid, as: j }; }
    return { sid: s.sid, as: null };
  });
  for (let k = 0; k < work.length && work.length > 1;) {
    if (work[k].as != null) { k++; continue; }
    if (k > 0) { ops.push({ op: "merge", sid: work[k - 1].sid }); work.splice(k, 1); }
    else { ops.push({ op: "merge", sid: work[0].sid }); work[0].as = work[1].as; work.splice(1, 1); }
  }
  if (!T.length) return ops;
  // Each remaining segment owns its target position and the unmatched ones after it; the first one
  // also owns any unmatched at the very start.
  const groups = work.map((w, k) => {
    const from = k === 0 ? 0 : w.as;
    const until = k + 1 < work.length ? work[k + 1].as : T.length;
    return { sid: w.sid, pieces: T.slice(from, until) };
  });
  if (work.length === 1) groups[0].pieces = T.slice();
  for (const g of groups) {
    if (g.pieces.length < 2) continue;
    const filled = g.pieces.map((p) => (p.words.length ? p.words : [{ t: PLACEHOLDER, s: p.s, e: p.s, c: null, edited: true, est: true }]));
    const all = filled.flat();
    const first = g.pieces[0], lastPiece = g.pieces[g.pieces.length - 1];
    ops.push(segmentOp({ ...first, sid: g.sid, s: Math.min(first.s, ...all.map((w) => w.s)), e: Math.max(lastPiece.e, ...all.map((w) => w.e)), words: all }));
    // From the last boundary back: each split leaves the head in place and puts the tail right after it.
    let at = all.length;
    for (let p = filled.length - 1; p >= 1; p--) {
      at -= filled[p].length;
      ops.push({ op: "split", sid: g.sid, at });
    }
  }
  return ops;
}

// Step two, once current has the target's shape: the operations that make every field equal, the
// segments to put in the model, and how the target's sids map onto the ones the server has.
export function restoreOps(current, target) {
  if (current.segments.length !== target.segments.length) throw new Error(t("restoreOps needs the target's shape: run structureOps first"));
  const ops = [], sids = new Map();
  const segments = target.segments.map((t, i) => {
    const c = current.segments[i];
    const seg = t.sid === c.sid ? t : withFields(t, { sid: c.sid });
    if (t.sid !== c.sid) sids.set(t.sid, c.sid);
    if (!sameSegment(c, seg)) ops.push(segmentOp(seg));
    return seg;
  });
  const wanted = new Map(target.speakers.map((s) => [s.id, s]));
  const speakers = [];
  for (const s of current.speakers) {
    const t = wanted.get(s.id);
    if (!t) continue;
    if (t.name !== s.name) ops.push({ op: "rename_speaker", speaker: s.id, name: t.name });
    speakers.push({ ...s, name: t.name });
  }
  if (current.note !== target.note) ops.push({ op: "note", text: target.note });
  if (current.title !== target.title) ops.push({ op: "title", text: target.title });
  // Speakers the target does not have: merged into one it has, after the segments left them. The
  // last speaker of a transcript cannot be merged away, so one added to a transcript without any stays.
  const gone = current.speakers.filter((s) => !wanted.has(s.id));
  const into = speakers[0];
  const removals = into ? gone.map((s) => ({ op: "merge_speakers", from: s.id, into: into.id })) : [];
  if (!into) speakers.push(...gone);
  return { ops, removals, segments, speakers, sids };
}
