// The transcript page: playback of a local file with word highlighting, and (for people who may
// change the transcript) in-place editing with undo, autosave and conflict handling.
// The JS model is the source of truth; the DOM is a view re-rendered one segment at a time.
import { realign, tokens } from "/static/align-0.1.js";

const SAVE_DELAY_MS = 800;
const UNDO_LIMIT = 200;
const $ = (id) => document.getElementById(id);

// Where edits go. The standard backend is the JSON API; a private transcript supplies its own (it
// applies the same operations to the decrypted document and saves a new envelope), with the same shapes:
// save(batch, baseRevision, {force, keepalive}) -> {revision, rebased_over, updated_at} or throws an
// error with .status (409 conflict, 0 offline); load() -> the transcript document as the API returns it.
export function apiBackend(id) {
  const { api } = window.Sotto;
  return {
    save: (ops, base, { force = false, keepalive = false } = {}) =>
      api("POST", `/api/v1/transcripts/${id}/edits`, { base_revision: base, ops, force }, { keepalive }),
    load: () => api("GET", `/api/v1/transcripts/${id}`),
  };
}

// The editor's model (times in ms) from a transcript document (times in seconds).
export function modelFrom(doc, editable) {
  return {
    id: doc.id, revision: doc.revision, title: doc.title, note: doc.note || "", duration: doc.duration, editable,
    speakers: doc.speakers.map((s) => ({ id: s.id, name: s.display_name || s.label, label: s.label })),
    segments: doc.segments.map((s) => ({
      sid: s.sid, speaker: s.speaker, s: Math.round(s.start * 1000), e: Math.round(s.end * 1000), note: s.note || "",
      words: s.words.map((w) => ({ t: w.word.trim(), s: Math.round(w.start * 1000), e: Math.round(w.end * 1000), c: w.probability, edited: !!w.edited, est: !!w.estimated })),
    })),
  };
}

export function mount({ file, model: given, backend: givenBackend } = {}) {
  const { api, clock, download } = window.Sotto;
  const model = given || JSON.parse($("doc").textContent);
  const backend = givenBackend || apiBackend(model.id);
  const root = $("transcript");
  const editable = model.editable;
  const audio = $("audio");
  const stateEl = $("save-state");
  let pending = [];          // operations not yet saved, in order
  let inFlight = false, timer = null, conflict = false, failed = false;
  const undoStack = [], redoStack = [];
  let editing = null;        // {seg, el, before}
  let speakerColours = new Map();

  // ---------- model helpers ----------
  const segIndex = (sid) => model.segments.findIndex((s) => s.sid === sid);
  const segOf = (sid) => model.segments[segIndex(sid)];
  const speakerName = (id) => { const s = model.speakers.find((x) => x.id === id); return s ? s.name : id; };
  const copy = (x) => JSON.parse(JSON.stringify(x));
  const toSeconds = (ms) => Math.round(ms) / 1000;
  const segState = (seg) => copy({ speaker: seg.speaker, s: seg.s, e: seg.e, note: seg.note, words: seg.words });
  const segmentOp = (seg) => ({
    op: "segment", sid: seg.sid, speaker: seg.speaker, start: toSeconds(seg.s), end: toSeconds(seg.e), note: seg.note,
    words: seg.words.map((w) => ({ word: w.t, start: toSeconds(w.s), end: toSeconds(w.e), probability: w.c, edited: !!w.edited, estimated: !!w.est })),
  });

  function colours() {
    speakerColours = new Map(model.speakers.map((s, i) => [s.id, i % 12]));
  }

  // ---------- rendering ----------
  function wordSpan(w) {
    const span = document.createElement("span");
    span.className = "w" + (w.c != null && w.c < 0.5 && !w.edited ? " lc" : "") + (w.est ? " est" : "");
    span.dataset.s = w.s; span.dataset.e = w.e;
    span.textContent = w.t;
    return span;
  }

  function renderSegment(seg, prevSpeaker) {
    const section = document.createElement("section");
    section.className = `seg spk-${speakerColours.get(seg.speaker) || 0}`;
    section.id = `s-${seg.sid}`; section.dataset.sid = seg.sid; section.dataset.s = seg.s; section.dataset.e = seg.e;
    const meta = document.createElement("div"); meta.className = "seg-meta";
    const time = document.createElement("button");
    time.type = "button"; time.className = "seg-time"; time.dataset.seek = seg.s; time.textContent = clock(seg.s);
    time.title = editable ? "Play from here (Alt+click: change timing)" : "Play from here";
    meta.appendChild(time);
    if (seg.speaker || editable) {
      const spk = document.createElement("button");
      spk.type = "button"; spk.className = "seg-spk" + (seg.speaker && seg.speaker === prevSpeaker ? " same" : "");
      spk.textContent = seg.speaker ? speakerName(seg.speaker) : "No speaker";
      if (editable) spk.setAttribute("aria-haspopup", "dialog"); else spk.disabled = true;
      meta.appendChild(spk);
    }
    const body = document.createElement("div"); body.className = "seg-body";
    const p = document.createElement("p"); p.className = "seg-text";
    seg.words.forEach((w, i) => { if (i) p.appendChild(document.createTextNode(" ")); p.appendChild(wordSpan(w)); });
    body.appendChild(p);
    if (seg.note) { const n = document.createElement("p"); n.className = "seg-note"; n.textContent = `Note: ${seg.note}`; body.appendChild(n); }
    if (editable) {
      const tools = document.createElement("div"); tools.className = "seg-tools";
      for (const [action, label] of [["edit", "Edit"], ["speaker", "Speaker"], ["timing", "Timing"], ["note", seg.note ? "Edit note" : "Add note"], ["merge-next", "Merge with next"]]) {
        const b = document.createElement("button"); b.type = "button"; b.dataset.action = action; b.textContent = label; tools.appendChild(b);
      }
      body.appendChild(tools);
    }
    section.append(meta, body);
    return section;
  }

  function renderAll() {
    colours();
    const frag = document.createDocumentFragment();
    let prev = null;
    for (const seg of model.segments) { frag.appendChild(renderSegment(seg, prev)); prev = seg.speaker; }
    root.replaceChildren(frag);
    renderSpeakers();
    buildIndex();
  }

  function rerender(sid) {
    const i = segIndex(sid);
    const old = $(`s-${sid}`);
    const fresh = renderSegment(model.segments[i], i > 0 ? model.segments[i - 1].speaker : null);
    if (old) old.replaceWith(fresh); else root.appendChild(fresh);
    const next = model.segments[i + 1];
    if (next) { const el = $(`s-${next.sid}`); if (el) el.replaceWith(renderSegment(next, model.segments[i].speaker)); }
    buildIndex();
  }

  function renderSpeakers() {
    const list = $("speakers");
    const talk = new Map();
    for (const seg of model.segments) if (seg.speaker) talk.set(seg.speaker, (talk.get(seg.speaker) || 0) + (seg.e - seg.s));
    list.replaceChildren(...model.speakers.map((s) => {
      const li = document.createElement("li"); li.dataset.speaker = s.id;
      const sw = document.createElement("span"); sw.className = `swatch spk-${speakerColours.get(s.id)}`;
      const name = document.createElement("span"); name.className = "spk-name"; name.textContent = s.name;
      const time = document.createElement("span"); time.className = "muted"; time.textContent = clock(talk.get(s.id) || 0);
      li.append(sw, name, time);
      if (editable) {
        const b = document.createElement("button"); b.type = "button"; b.className = "link spk-rename"; b.textContent = "Rename";
        b.setAttribute("aria-label", `Rename ${s.name}`); li.appendChild(b);
      }
      return li;
    }));
    if (!model.speakers.length) { const li = document.createElement("li"); li.className = "muted"; li.textContent = "No speakers identified."; list.appendChild(li); }
    const merge = $("speaker-merge"); if (merge) merge.disabled = model.speakers.length < 2;
  }

  // ---------- saving ----------
  function showState(text, cls) {
    stateEl.textContent = text;
    stateEl.className = cls ? `is-${cls}` : "";
  }

  function queue(ops) {
    pending.push(...ops);
    failed = false;
    showState("Unsaved changes");
    clearTimeout(timer);
    timer = setTimeout(flush, SAVE_DELAY_MS);
  }

  async function flush({ force = false, keepalive = false } = {}) {
    clearTimeout(timer);
    if (inFlight || !pending.length || (conflict && !force)) return;
    inFlight = true;
    const batch = pending; pending = [];
    showState("Saving…");
    try {
      const result = await backend.save(batch, model.revision, { force, keepalive });
      model.revision = result.revision;
      conflict = false; $("conflict").classList.add("hidden");
      const at = new Date(result.updated_at);
      showState(`Saved ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
      if (result.rebased_over.length) showState(`Saved (merged with another edit) ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
    } catch (err) {
      pending = batch.concat(pending);
      if (err.status === 409) {
        conflict = true;
        showState("Conflict", "conflict");
        $("conflict-text").textContent = err.message;
        $("conflict").classList.remove("hidden");
      } else if (err.status === 0) {
        showState("Offline (retrying)", "failed");
        setTimeout(flush, 5000);
      } else {
        failed = true;
        showState(`Save failed: ${err.message}`, "failed");
      }
    } finally {
      inFlight = false;
      if (pending.length && !conflict && !failed) timer = setTimeout(flush, SAVE_DELAY_MS);
    }
  }

  async function settle() {  // wait until everything is saved (before export, structural edits)
    for (let i = 0; i < 100 && (pending.length || inFlight); i++) {
      if (conflict || failed) throw new Error("Your edits are not saved yet.");
      if (!inFlight) await flush(); else await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function reload() {
    const fresh = modelFrom(await backend.load(), editable);
    for (const key of ["revision", "title", "note", "speakers", "segments"]) model[key] = fresh[key];
    renderAll();
  }

  // Structural edits (split, merge, speaker merge) change segment ids: save, then reload the model.
  async function structural(ops) {
    await settle();
    pending.push(...ops);
    await flush();
    if (conflict || failed) return false;
    await reload();
    return true;
  }

  // ---------- undo ----------
  function record(entry) {
    undoStack.push(entry); if (undoStack.length > UNDO_LIMIT) undoStack.shift();
    redoStack.length = 0; undoButtons();
  }
  function undoButtons() { if (!editable) return; $("undo").disabled = !undoStack.length; $("redo").disabled = !redoStack.length; }
  async function undo() { const e = undoStack.pop(); if (!e) return; await e.undo(); redoStack.push(e); undoButtons(); }
  async function redo() { const e = redoStack.pop(); if (!e) return; await e.redo(); undoStack.push(e); undoButtons(); }

  // A change to segments' own fields: one undo step, possibly over several segments (replace all).
  function changeSegments(changes) {  // [{sid, before, after}]
    const apply = (which) => {
      for (const c of changes) { Object.assign(segOf(c.sid), copy(c[which])); rerender(c.sid); }
      queue(changes.map((c) => segmentOp(segOf(c.sid))));
    };
    apply("after");
    record({ undo: async () => apply("before"), redo: async () => apply("after") });
  }

  // ---------- editing text ----------
  function caretWordIndex(el) {
    const sel = window.getSelection();
    if (!sel.rangeCount) return null;
    const range = sel.getRangeAt(0).cloneRange();
    range.selectNodeContents(el); range.setEnd(sel.getRangeAt(0).endContainer, sel.getRangeAt(0).endOffset);
    return range.toString();
  }

  function startEdit(sid, atWord) {
    if (!editable) return;
    if (editing && editing.seg.sid === sid) return;
    if (editing) commit();
    const seg = segOf(sid), el = $(`s-${sid}`).querySelector(".seg-text");
    editing = { seg, el, text: el.textContent };
    el.setAttribute("contenteditable", "plaintext-only");
    if (el.contentEditable !== "plaintext-only") el.setAttribute("contenteditable", "true");
    el.setAttribute("aria-label", "Edit segment text");
    el.focus();
    const range = document.createRange();
    if (atWord) { range.setStart(atWord.firstChild || atWord, 0); range.collapse(true); }
    else { range.selectNodeContents(el); range.collapse(false); }
    const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
  }

  function commit({ silent = false } = {}) {
    if (!editing) return null;
    const { seg, el, text } = editing;
    editing = null;
    const now = el.textContent.replace(/\s+/g, " ").trim();
    el.removeAttribute("contenteditable");
    if (now === text.replace(/\s+/g, " ").trim()) { rerender(seg.sid); return null; }
    const before = segState(seg);
    const { words, changedShare } = realign(seg.words, now, { s: seg.s, e: seg.e });
    const after = { ...segState(seg), words };
    changeSegments([{ sid: seg.sid, before, after }]);
    if (!silent && changedShare > 0.6 && words.length > 2) showState("Saved edits; timings estimated for most of this segment");
    return seg.sid;
  }

  function cancelEdit() {
    if (!editing) return;
    const sid = editing.seg.sid; editing = null; rerender(sid);
  }

  async function splitAtCaret() {
    const { seg, el } = editing;
    const head = caretWordIndex(el) || "";
    const full = el.textContent;
    // A caret inside a word splits the word too: insert a space, realign, then split between them.
    el.textContent = (head + " " + full.slice(head.length)).trim();
    commit({ silent: true });
    const at = tokens(head).length;
    const current = segOf(seg.sid);
    if (at <= 0 || at >= current.words.length) return;
    const sid = seg.sid;
    if (await structural([{ op: "split", sid, at }])) {
      record({ undo: async () => { await structural([{ op: "merge", sid }]); }, redo: async () => { await structural([{ op: "split", sid, at }]); } });
    }
  }

  async function mergeWith(sid) {  // sid and the segment after it
    const i = segIndex(sid);
    if (i < 0 || i >= model.segments.length - 1) return;
    const at = model.segments[i].words.length;
    if (await structural([{ op: "merge", sid }])) {
      record({ undo: async () => { await structural([{ op: "split", sid, at }]); }, redo: async () => { await structural([{ op: "merge", sid }]); } });
    }
  }

  // ---------- dialogs ----------
  function dialog(id, title, build) {
    const d = $(id);
    if (title) $(`${id}-title`) && ($(`${id}-title`).textContent = title);
    const trigger = document.activeElement;
    if (build) { $(`${id}-body`).replaceChildren(...build()); }
    return new Promise((resolve) => {
      d.addEventListener("close", () => { if (trigger && trigger.focus) trigger.focus(); resolve(d.returnValue === "ok"); }, { once: true });
      d.returnValue = ""; d.showModal();
    });
  }
  function field(label, input) { const l = document.createElement("label"); l.append(label, input); return l; }
  function select(options, value) {
    const s = document.createElement("select");
    for (const [v, t] of options) { const o = document.createElement("option"); o.value = v; o.textContent = t; if (v === value) o.selected = true; s.appendChild(o); }
    return s;
  }

  async function speakerMenu(sid, onlyThis) {
    const seg = segOf(sid);
    const choice = select([["", "No speaker"], ...model.speakers.map((s) => [s.id, s.name]), ["__new", "New speaker…"]], seg.speaker || "");
    const newName = document.createElement("input"); newName.placeholder = "Name of the new speaker";
    const single = document.createElement("input"); single.type = "checkbox"; single.checked = !!onlyThis;
    const singleLabel = document.createElement("label"); singleLabel.className = "inline"; singleLabel.append(single, " Only this segment (otherwise the whole run of this speaker's consecutive segments)");
    if (!await dialog("speaker-dialog", "Who is speaking?", () => [field("Speaker", choice), field("New speaker's name", newName), singleLabel])) return;
    let target = choice.value || null;
    if (target === "__new") {
      const key = nextSpeakerKey();
      const name = newName.value.trim() || `Speaker ${key.slice(1)}`;
      const ok = await structural([{ op: "add_speaker", key, name }]);
      if (!ok) return;
      target = key;
    }
    const run = [sid];
    if (!single.checked) {
      for (let i = segIndex(sid) + 1; i < model.segments.length && model.segments[i].speaker === seg.speaker; i++) run.push(model.segments[i].sid);
      for (let i = segIndex(sid) - 1; i >= 0 && model.segments[i].speaker === seg.speaker; i--) run.unshift(model.segments[i].sid);
    }
    changeSegments(run.map((id) => { const s = segOf(id); return { sid: id, before: segState(s), after: { ...segState(s), speaker: target } }; }));
  }

  function nextSpeakerKey() {
    const used = new Set(model.speakers.map((s) => s.id));
    let n = model.speakers.length + 1; while (used.has(`S${n}`)) n++;
    return `S${n}`;
  }

  async function renameSpeaker(id) {
    const s = model.speakers.find((x) => x.id === id);
    const input = document.createElement("input"); input.value = s.name; input.maxLength = 100; input.required = true;
    if (!await dialog("speaker-dialog", `Rename ${s.name}`, () => [field("Name (everywhere in this transcript)", input)])) return;
    const before = s.name, after = input.value.trim();
    if (!after || after === before) return;
    const apply = (name) => { s.name = name; renderAll(); queue([{ op: "rename_speaker", speaker: id, name }]); };
    apply(after);
    record({ undo: async () => apply(before), redo: async () => apply(after) });
  }

  async function mergeSpeakers() {
    const opts = model.speakers.map((s) => [s.id, s.name]);
    const from = select(opts, opts[1] && opts[1][0]), into = select(opts, opts[0][0]);
    if (!await dialog("speaker-dialog", "Merge two speakers", () => [field("Merge", from), field("into", into)])) return;
    if (from.value === into.value) return;
    const gone = model.speakers.find((s) => s.id === from.value);
    const theirs = model.segments.filter((s) => s.speaker === from.value).map((s) => s.sid);
    const forward = [{ op: "merge_speakers", from: from.value, into: into.value }];
    if (await structural(forward)) {
      record({
        undo: async () => { await structural([{ op: "add_speaker", key: gone.id, name: gone.name }, ...theirs.map((sid) => ({ op: "segment", sid, speaker: gone.id }))]); },
        redo: async () => { await structural(forward); },
      });
    }
  }

  async function addSpeaker() {
    const input = document.createElement("input"); input.maxLength = 100;
    if (!await dialog("speaker-dialog", "New speaker", () => [field("Name", input)])) return;
    const key = nextSpeakerKey();
    await structural([{ op: "add_speaker", key, name: input.value.trim() || `Speaker ${key.slice(1)}` }]);
  }

  async function noteFor(sid) {
    const seg = segOf(sid);
    const area = document.createElement("textarea"); area.value = seg.note || ""; area.maxLength = 20000;
    if (!await dialog("speaker-dialog", "Note on this segment", () => [field("Note", area)])) return;
    changeSegments([{ sid, before: segState(seg), after: { ...segState(seg), note: area.value.trim() } }]);
  }

  async function timingFor(sid) {
    const i = segIndex(sid), seg = model.segments[i];
    const start = $("timing-start"), end = $("timing-end"), error = $("timing-error");
    start.value = (seg.s / 1000).toFixed(3); end.value = (seg.e / 1000).toFixed(3); error.textContent = "";
    $("timing-start-now").onclick = () => { start.value = audio.currentTime.toFixed(3); };
    $("timing-end-now").onclick = () => { end.value = audio.currentTime.toFixed(3); };
    $("timing-dialog").onclick = (ev) => {
      const b = ev.target.closest("[data-nudge]");
      if (b) { const input = $(b.dataset.nudge); input.value = Math.max(0, Number(input.value) + Number(b.dataset.by)).toFixed(3); }
    };
    $("timing-dialog").onkeydown = (ev) => {  // [ and ]: start and end to the playhead, as in subtitle editors
      if (ev.key === "[") { ev.preventDefault(); start.value = audio.currentTime.toFixed(3); }
      if (ev.key === "]") { ev.preventDefault(); end.value = audio.currentTime.toFixed(3); }
    };
    if (!await dialog("timing-dialog")) return;
    const s = Math.round(Number(start.value) * 1000), e = Math.round(Number(end.value) * 1000);
    if (!(s >= 0 && e > s && e <= model.duration * 1000 + 1000)) { alert("The start must come before the end, within the recording."); return; }
    const changes = [{ sid, before: segState(seg), after: { ...segState(seg), s, e } }];
    // Neighbours that touched this segment move with it; overlaps are allowed but flagged.
    const prev = model.segments[i - 1], next = model.segments[i + 1];
    if (prev && prev.e === seg.s && s > prev.s) changes.push({ sid: prev.sid, before: segState(prev), after: { ...segState(prev), e: s } });
    if (next && next.s === seg.e && e < next.e) changes.push({ sid: next.sid, before: segState(next), after: { ...segState(next), s: e } });
    changeSegments(changes);
    if ((prev && s < prev.e && prev.e !== seg.s) || (next && e > next.s && next.s !== seg.e)) showState("Saved; this segment now overlaps its neighbour");
  }

  // ---------- playback ----------
  let starts = new Int32Array(0), spans = [], current = -1, follow = true, raf = 0, pendingSeek = null;
  function buildIndex() {
    spans = Array.from(root.querySelectorAll(".w"));
    starts = Int32Array.from(spans, (s) => Number(s.dataset.s));
    current = -1;
  }
  function find(ms) {  // the last word starting at or before ms
    let lo = 0, hi = starts.length - 1, ans = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (starts[mid] <= ms) { ans = mid; lo = mid + 1; } else hi = mid - 1; }
    return ans;
  }
  function highlight() {
    const ms = audio.currentTime * 1000;
    if (current >= 0 && spans[current] && ms >= starts[current] && (current + 1 >= starts.length || ms < starts[current + 1])) return;
    const next = find(ms);
    if (next === current) return;
    if (current >= 0 && spans[current]) { spans[current].classList.remove("is-cur"); const seg = spans[current].closest(".seg"); if (seg) seg.removeAttribute("aria-current"); }
    current = next;
    if (current >= 0) {
      const w = spans[current], seg = w.closest(".seg");
      w.classList.add("is-cur"); if (seg) seg.setAttribute("aria-current", "true");
      const r = w.getBoundingClientRect();
      if (follow && !editing && (r.top < 0 || r.bottom > window.innerHeight - 80)) w.scrollIntoView({ block: "center" });
    }
  }
  function loop() { highlight(); if (!audio.paused) raf = requestAnimationFrame(loop); }
  audio.addEventListener("play", () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(loop); });
  audio.addEventListener("seeked", highlight);
  audio.addEventListener("pause", highlight);
  window.addEventListener("wheel", () => { if (!audio.paused) { follow = false; $("jump-current").classList.remove("hidden"); } }, { passive: true });
  $("jump-current").addEventListener("click", () => { follow = true; $("jump-current").classList.add("hidden"); if (spans[current]) spans[current].scrollIntoView({ block: "center" }); });

  function attach(f) {
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(f);
    $("audio-label").textContent = `Audio: ${f.name} (on this device)`;
    $("audio-warning").textContent = "";
    audio.addEventListener("loadedmetadata", () => {
      if (Math.abs(audio.duration - model.duration) > 1) $("audio-warning").textContent = "This file may not match: its length differs from the transcript's.";
      if (pendingSeek != null) { audio.currentTime = pendingSeek; pendingSeek = null; }
    }, { once: true });
    audio.playbackRate = Number($("speed").value);
  }
  function seek(ms) {
    const t = (ms + 1) / 1000;  // 1 ms in, so the previous word does not light up
    if (!audio.src) { pendingSeek = t; $("audio-warning").textContent = `Attach the recording to play from ${clock(ms)}.`; return; }
    audio.currentTime = t; highlight();
  }
  $("audio-file").addEventListener("change", (e) => { if (e.target.files[0]) attach(e.target.files[0]); });
  const speed = $("speed");
  speed.value = localStorage.getItem("sotto.speed") || "1";
  speed.addEventListener("change", () => { audio.playbackRate = Number(speed.value); localStorage.setItem("sotto.speed", speed.value); });
  const nudgeSpeed = (d) => { const opts = Array.from(speed.options).map((o) => o.value); const i = Math.max(0, Math.min(opts.length - 1, opts.indexOf(speed.value) + d)); speed.value = opts[i]; speed.dispatchEvent(new Event("change")); };
  const toggle = () => { if (!audio.src) return; if (audio.paused) { audio.currentTime = Math.max(0, audio.currentTime - 1); audio.play(); } else audio.pause(); };
  const skip = (s) => { if (audio.src) { audio.currentTime = Math.max(0, audio.currentTime + s); highlight(); } };

  // ---------- find and replace ----------
  let found = [], foundAt = -1;
  function clearFound() { root.querySelectorAll(".is-found, .is-found-cur").forEach((w) => w.classList.remove("is-found", "is-found-cur")); }
  function runFind() {
    clearFound(); found = []; foundAt = -1;
    const q = $("find-text").value.trim().toLowerCase();
    if (!q) { $("find-count").textContent = ""; return; }
    for (const seg of model.segments) {
      seg.words.forEach((w, i) => { if (w.t.toLowerCase().includes(q)) found.push({ sid: seg.sid, i }); });
    }
    for (const f of found) { const el = $(`s-${f.sid}`).querySelectorAll(".w")[f.i]; if (el) el.classList.add("is-found"); }
    step(1);
  }
  function step(d) {
    if (!found.length) { $("find-count").textContent = "No matches"; return; }
    root.querySelectorAll(".is-found-cur").forEach((w) => w.classList.remove("is-found-cur"));
    foundAt = (foundAt + d + found.length) % found.length;
    const f = found[foundAt], el = $(`s-${f.sid}`).querySelectorAll(".w")[f.i];
    if (el) { el.classList.add("is-found-cur"); el.scrollIntoView({ block: "center" }); }
    $("find-count").textContent = `${foundAt + 1} of ${found.length}`;
  }
  function replaceIn(seg, q, by, only) {
    const re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi");
    const words = seg.words.map((w) => w.t);
    if (only != null) words[only] = words[only].replace(re, by); else for (let i = 0; i < words.length; i++) words[i] = words[i].replace(re, by);
    const text = words.join(" ");
    const { words: aligned } = realign(seg.words, text, { s: seg.s, e: seg.e });
    return { sid: seg.sid, before: segState(seg), after: { ...segState(seg), words: aligned } };
  }
  function replace(all) {
    const q = $("find-text").value.trim(), by = $("replace-text").value.trim();
    if (!q || !found.length) return;
    if (all) {
      const sids = [...new Set(found.map((f) => f.sid))];
      changeSegments(sids.map((sid) => replaceIn(segOf(sid), q, by, null)));  // one undo step
    } else {
      const f = found[Math.max(0, foundAt)];
      changeSegments([replaceIn(segOf(f.sid), q, by, f.i)]);
    }
    runFind();
  }
  const openFind = () => { $("findbar").classList.remove("hidden"); $("find-text").focus(); $("find-text").select(); };
  $("find-open").addEventListener("click", openFind);
  $("find-text").addEventListener("input", runFind);
  $("find-text").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); step(e.shiftKey ? -1 : 1); } });
  $("find-next").addEventListener("click", () => step(1));
  $("find-prev").addEventListener("click", () => step(-1));
  $("find-close").addEventListener("click", () => { $("findbar").classList.add("hidden"); clearFound(); });
  if (editable) { $("replace-one").addEventListener("click", () => replace(false)); $("replace-all").addEventListener("click", () => replace(true)); }

  // ---------- events ----------
  root.addEventListener("click", (e) => {
    const seg = e.target.closest(".seg");
    if (!seg) return;
    const sid = Number(seg.dataset.sid);
    const action = e.target.closest("[data-action]");
    if (action) {
      const a = action.dataset.action;
      if (a === "edit") startEdit(sid);
      else if (a === "speaker") speakerMenu(sid, false);
      else if (a === "timing") timingFor(sid);
      else if (a === "note") noteFor(sid);
      else if (a === "merge-next") mergeWith(sid);
      return;
    }
    if (e.target.closest(".seg-spk")) { if (editable) speakerMenu(sid, e.shiftKey); return; }
    const time = e.target.closest(".seg-time");
    if (time) { if (editable && e.altKey) timingFor(sid); else seek(Number(time.dataset.seek)); return; }
    const w = e.target.closest(".w");
    if (editing && editing.seg.sid === sid) { if (w && e.altKey) seek(Number(w.dataset.s)); return; }
    root.querySelectorAll(".seg.is-focus").forEach((s) => s.classList.remove("is-focus"));
    seg.classList.add("is-focus");
    if (w) seek(Number(w.dataset.s));
  });
  root.addEventListener("dblclick", (e) => {
    const seg = e.target.closest(".seg");
    if (seg && editable && !(editing && editing.seg.sid === Number(seg.dataset.sid))) startEdit(Number(seg.dataset.sid), e.target.closest(".w"));
  });
  root.addEventListener("focusout", (e) => {
    if (editing && e.target === editing.el && !editing.el.contains(e.relatedTarget)) commit();
  });
  root.addEventListener("paste", (e) => {
    if (!editing) return;
    e.preventDefault();
    const text = (e.clipboardData.getData("text/plain") || "").replace(/\s+/g, " ");
    document.execCommand("insertText", false, text);
  });
  root.addEventListener("keydown", async (e) => {
    if (editing) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault(); const sid = commit(); const i = segIndex(sid ?? Number(e.target.closest(".seg").dataset.sid));
        const next = model.segments[i + 1]; if (next) startEdit(next.sid);
      } else if (e.key === "Enter") { e.preventDefault(); await splitAtCaret(); }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancelEdit(); }
      else if (e.key === "Backspace") {
        const sel = window.getSelection();
        if (sel.isCollapsed && (caretWordIndex(editing.el) || "") === "") {
          e.preventDefault(); const sid = editing.seg.sid; commit(); const i = segIndex(sid);
          if (i > 0) await mergeWith(model.segments[i - 1].sid);
        }
      }
      return;
    }
    const focus = root.querySelector(".seg.is-focus");
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const all = Array.from(root.querySelectorAll(".seg"));
      const i = focus ? all.indexOf(focus) + (e.key === "ArrowDown" ? 1 : -1) : 0;
      const next = all[Math.max(0, Math.min(all.length - 1, i))];
      if (next) { all.forEach((s) => s.classList.remove("is-focus")); next.classList.add("is-focus"); next.scrollIntoView({ block: "nearest" }); }
    } else if (e.key === "Enter" && focus && editable) { e.preventDefault(); startEdit(Number(focus.dataset.sid)); }
  });

  document.addEventListener("keydown", (e) => {
    if (document.querySelector("dialog[open]")) return;  // Esc closes the dialog first
    if (e.ctrlKey && e.altKey) return;  // AltGr
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.code === "KeyF") { if ($("findbar").classList.contains("hidden")) { e.preventDefault(); openFind(); } return; }
    if (mod && e.code === "KeyZ" && !editing && editable && !e.target.closest("input, textarea")) { e.preventDefault(); (e.shiftKey ? redo : undo)(); return; }
    if (mod && e.code === "KeyY" && !editing && editable && !e.target.closest("input, textarea")) { e.preventDefault(); redo(); return; }
    if (e.key === "Escape" && !editing) { e.preventDefault(); toggle(); return; }
    if (!e.altKey) return;
    const actions = { KeyK: toggle, KeyJ: () => skip(e.shiftKey ? -10 : -5), KeyL: () => skip(e.shiftKey ? 10 : 5), Minus: () => nudgeSpeed(-1), Equal: () => nudgeSpeed(1),
      KeyS: () => { const f = root.querySelector(".seg.is-focus") || (editing && $(`s-${editing.seg.sid}`)); if (f && editable) speakerMenu(Number(f.dataset.sid), false); } };
    if (actions[e.code]) {
      e.preventDefault();
      if (editing && e.code === "KeyK" && !audio.paused) { audio.pause(); return; }
      actions[e.code]();
    }
  });

  if (editable) {
    $("undo").addEventListener("click", undo);
    $("redo").addEventListener("click", redo);
    $("speakers").addEventListener("click", (e) => { const b = e.target.closest(".spk-rename"); if (b) renameSpeaker(b.closest("li").dataset.speaker); });
    $("speaker-add").addEventListener("click", addSpeaker);
    $("speaker-merge").addEventListener("click", mergeSpeakers);
    let noteTimer = null;
    $("t-note").addEventListener("input", () => {
      clearTimeout(noteTimer);
      noteTimer = setTimeout(() => { model.note = $("t-note").value; queue([{ op: "note", text: model.note }]); }, SAVE_DELAY_MS);
      showState("Unsaved changes");
    });
    const title = $("t-title");
    title.setAttribute("contenteditable", "plaintext-only");
    if (title.contentEditable !== "plaintext-only") title.setAttribute("contenteditable", "true");
    title.setAttribute("aria-label", "Title (click to rename)");
    title.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); title.blur(); } });
    title.addEventListener("blur", () => {
      const text = title.textContent.replace(/\s+/g, " ").trim();
      if (!text) { title.textContent = model.title; return; }
      if (text !== model.title) { model.title = text; document.title = `${text} · Sotto`; queue([{ op: "title", text }]); }
    });
    $("delete").addEventListener("click", async () => {
      if (!confirm("Delete this transcript for good? This cannot be undone.")) return;
      try { await api("DELETE", `/api/v1/transcripts/${model.id}`); pending = []; window.location.assign("/"); }
      catch (err) { alert(err.message); }
    });
    $("conflict-reload").addEventListener("click", () => { pending = []; window.location.reload(); });
    $("conflict-keep").addEventListener("click", () => { flush({ force: true }); });
    $("conflict-copy").addEventListener("click", async () => {
      const sids = new Set(pending.filter((o) => o.sid != null).map((o) => o.sid));
      const text = model.segments.filter((s) => sids.has(s.sid)).map((s) => s.words.map((w) => w.t).join(" ")).join("\n\n");
      try { await navigator.clipboard.writeText(text); $("conflict-text").textContent = "Your text is on the clipboard."; } catch (err) { prompt("Copy your text:", text); }
    });
    // Save on leaving; warn while something is unsaved.
    const leave = () => { if (pending.length && !conflict) flush({ keepalive: true }); };
    window.addEventListener("pagehide", leave);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") leave(); });
    window.addEventListener("beforeunload", (e) => { if (pending.length || inFlight || editing) { e.preventDefault(); e.returnValue = ""; } });
  }

  // Exports reflect saved edits: save first.
  $("export-menu").addEventListener("click", async (e) => {
    const a = e.target.closest("a[data-export]");
    if (!a) return;
    e.preventDefault();
    if (editing) commit();
    try {
      await settle();
      // A private transcript's backend makes the file in the browser (the server cannot read it).
      const blob = backend.export ? await backend.export(a.dataset.export, model) : await api("GET", a.getAttribute("href"), undefined, { blob: true });
      download(blob, `${model.title}.${a.dataset.export}`);
    } catch (err) { alert(err.message); }
    $("export-menu").open = false;
  });

  // A second tab on the same transcript: say so (their saves would conflict).
  if ("BroadcastChannel" in window) {
    const channel = new BroadcastChannel(`sotto-transcript-${model.id}`);
    channel.onmessage = (e) => { if (e.data === "open") { channel.postMessage("here"); } showState("Also open in another tab"); };
    channel.postMessage("open");
  }

  renderAll();
  undoButtons();
  if (file) attach(file);
  // /t/<id>?t=83.12#s-42: scroll to the segment, flash it, and set the time (no autoplay).
  const params = new URLSearchParams(location.search);
  const target = location.hash.startsWith("#s-") ? $(location.hash.slice(1)) : null;
  if (target) { target.scrollIntoView({ block: "center" }); target.classList.add("is-flash", "is-focus"); }
  if (params.has("t")) seek(Math.round(Number(params.get("t")) * 1000));

  window.SottoEditor = { model, flush, settle, undo, redo, audio };  // for people debugging, and the tests
  return window.SottoEditor;
}

if (!window.__sottoManualMount) mount();
