// The transcript page: playback of a local file with word highlighting, and (for people who may
// change the transcript) in-place editing with undo, autosave and conflict handling.
// The JS model is the source of truth; the DOM is a view re-rendered one segment at a time. This file
// wires the page to the modules under editor/, which hold everything that can run without a page.
import * as M from "/static/editor/model-0.2.js";
import { History } from "/static/editor/undo-0.1.js";
import { colourMap, renderSegment, speakerItems } from "/static/editor/render-0.2.js";
import { Saver, SAVE_DELAY_MS } from "/static/editor/save-0.2.js";
import { countsOf, keep, move } from "/static/editor/nav-0.1.js";

const { t } = window.SottoI18n;  // the page's language (static/i18n-0.1.js)

export { modelFrom } from "/static/editor/model-0.2.js";

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

export function mount({ file, model: given, backend: givenBackend } = {}) {
  const { api, clock, download } = window.Sotto;
  const model = given || M.frozen(JSON.parse($("doc").textContent));
  const backend = givenBackend || apiBackend(model.id);
  const root = $("transcript");
  const editable = model.editable;
  const audio = $("audio");
  const stateEl = $("save-state");
  const history = new History();
  let editing = null;        // {seg, el, text}
  let busy = false;          // an undo or redo is being saved
  let colours = new Map();
  const bar = editable ? $("seg-bar") : null;
  if (!editable && $("seg-bar")) $("seg-bar").remove();  // a private transcript shared read-only

  function showState(text, cls) {
    stateEl.textContent = text;
    stateEl.className = cls ? `is-${cls}` : "";
  }
  const saver = new Saver({
    backend, model, show: showState,
    conflictShown: (message) => {
      $("conflict").classList.toggle("hidden", message == null);
      if (message != null) $("conflict-text").textContent = message;
    },
  });

  // ---------- rendering ----------
  const ctx = (prevSpeaker) => ({ editable, colours, prevSpeaker, clock, name: (id) => M.speakerName(model, id) });

  function renderAll() {
    colours = colourMap(model);
    const frag = document.createDocumentFragment();
    let prev = null;
    for (const seg of model.segments) { frag.appendChild(renderSegment(document, seg, ctx(prev))); prev = seg.speaker; }
    const had = hasFocus();
    root.replaceChildren(frag);
    renderSpeakers();
    buildIndex();
    restop(had);
  }

  function rerender(sid) {
    const i = M.segIndex(model, sid);
    const had = hasFocus();
    const old = $(`s-${sid}`);
    const fresh = renderSegment(document, model.segments[i], ctx(i > 0 ? model.segments[i - 1].speaker : null));
    if (old) old.replaceWith(fresh); else root.appendChild(fresh);
    const next = model.segments[i + 1];
    if (next) { const el = $(`s-${next.sid}`); if (el) el.replaceWith(renderSegment(document, next, ctx(model.segments[i].speaker))); }
    buildIndex();
    restop(had);
  }

  // ---------- selection: one Tab stop in the transcript (a roving tabindex), arrow keys inside ----------
  // pos is the keyboard's word; `selected` once the person clicked or moved into the transcript: the
  // segment bar acts on that segment.
  let pos = { seg: 0, word: 0 }, posSid = null, selected = false, stop = null;
  const hasFocus = () => !!stop && document.activeElement === stop;
  function stopEl(p) {
    const seg = model.segments[p.seg];
    const section = seg && $(`s-${seg.sid}`);
    if (!section) return null;
    return section.querySelectorAll(".w")[p.word] || section.querySelector(".seg-text");
  }
  function place(p, { focus = false, select = true, scroll = true } = {}) {
    if (!model.segments.length) return;
    pos = p; posSid = model.segments[p.seg].sid;
    if (select) selected = true;
    const el = stopEl(pos);
    if (stop && stop !== el) stop.removeAttribute("tabindex");
    stop = el;
    root.querySelectorAll(".seg.is-focus").forEach((s) => s.classList.remove("is-focus"));
    if (!el) return;
    el.tabIndex = 0;
    if (selected) el.closest(".seg").classList.add("is-focus");
    updateBar();
    if (focus) el.focus({ preventScroll: !scroll });
  }
  function restop(focus) {  // after re-rendering: the same segment's word, focused again if it was
    if (posSid == null && model.segments.length) posSid = model.segments[0].sid;
    place(keep(model, posSid, pos.word), { focus, select: false, scroll: false });
  }
  const selectedSid = () => (selected && model.segments[pos.seg] ? model.segments[pos.seg].sid : null);
  function updateBar() {
    if (!bar) return;
    const seg = selected ? model.segments[pos.seg] : null;
    for (const b of bar.querySelectorAll("button")) b.disabled = !seg || busy || (b.dataset.action === "merge-next" && pos.seg >= model.segments.length - 1);
    $("seg-bar-which").textContent = seg ? t("Segment at {time}", { time: clock(seg.s) }) + (seg.speaker ? ` · ${M.speakerName(model, seg.speaker)}` : "") : t("Select a segment to change it");
  }

  function renderSpeakers() {
    $("speakers").replaceChildren(...speakerItems(document, model, { editable, colours, clock }));
    const merge = $("speaker-merge"); if (merge) merge.disabled = model.speakers.length < 2;
  }

  // The title and the transcript's note live outside the rendered segments.
  function syncHeader() {
    const title = $("t-title");
    if (title.textContent !== model.title && document.activeElement !== title) { title.textContent = model.title; document.title = `${model.title} · Sotto`; }
    const note = $("t-note");
    if (note.value !== model.note) note.value = model.note;
  }

  // ---------- changes ----------
  function change(segments) {  // new versions of segments: into the model, the page and the save queue
    const ops = M.applySegments(model, segments);
    for (const s of segments) rerender(s.sid);
    saver.queue(ops);
  }

  async function reload() {
    const fresh = M.modelFrom(await backend.load(), editable);
    for (const key of ["revision", "title", "note", "speakers", "segments"]) model[key] = fresh[key];
    syncHeader();
    renderAll();
  }

  // Structural edits (split, merge, speakers added or merged) change segment ids: save, then reload.
  async function structural(ops) {
    if (!await saver.now(ops)) return false;
    await reload();
    return true;
  }

  // ---------- undo: every step keeps the whole state before and after it ----------
  function undoButtons() { if (!editable) return; $("undo").disabled = !history.canUndo || busy; $("redo").disabled = !history.canRedo || busy; updateBar(); }
  function recorded(before) {
    const after = M.snapshot(model);
    if (!M.sameState(before, after)) history.record(before, after);
    undoButtons();
  }
  async function step(fn) {
    const before = M.snapshot(model);
    try { return await fn(); } finally { recorded(before); }
  }

  // Make the model (and the server) equal to `target`, with the ordinary operations.
  async function restore(target) {
    const shape = M.structureOps(M.snapshot(model), target);
    if (shape.length && !await structural(shape)) return false;
    const plan = M.restoreOps(M.snapshot(model), target);
    Object.assign(model, { segments: plan.segments, speakers: plan.speakers, note: target.note, title: target.title });
    history.renumber(plan.sids, (s, sid) => M.withFields(s, { sid }));
    syncHeader();
    renderAll();
    if (plan.removals.length) return structural([...plan.ops, ...plan.removals]);
    saver.queue(plan.ops);
    return true;
  }

  async function travel(back) {
    if (busy || !editable) return;
    if (editing) commit();
    const s = back ? history.undo() : history.redo();
    if (!s) return;
    busy = true; undoButtons();
    try {
      if (await restore(M.revert(M.snapshot(model), s.from, s.to))) { if (back) history.undone(s.step); else history.redone(s.step); }
    } catch (err) {
      showState(t("Save failed: {reason}", { reason: err.message }), "failed");
    } finally { busy = false; undoButtons(); }
  }
  const undo = () => travel(true), redo = () => travel(false);

  // ---------- editing text ----------
  function caretText(el) {  // the segment's text before the caret
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
    const seg = M.segOf(model, sid), el = $(`s-${sid}`).querySelector(".seg-text");
    const i = M.segIndex(model, sid);
    if (pos.seg !== i) place({ seg: i, word: 0 });
    if (stop && el.contains(stop) && stop !== el) stop.removeAttribute("tabindex");  // Tab leaves the box
    editing = { seg, el, text: el.textContent };
    el.setAttribute("contenteditable", "plaintext-only");
    if (el.contentEditable !== "plaintext-only") el.setAttribute("contenteditable", "true");
    el.setAttribute("aria-label", t("Edit segment text"));
    el.focus();
    const range = document.createRange();
    if (atWord) { range.setStart(atWord.firstChild || atWord, 0); range.collapse(true); }
    else { range.selectNodeContents(el); range.collapse(false); }
    const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
  }

  function commit({ silent = false, record = true } = {}) {
    if (!editing) return null;
    const { seg: was, el } = editing;
    editing = null;
    const text = el.textContent;
    el.removeAttribute("contenteditable");
    const seg = M.segOf(model, was.sid);
    if (!seg || M.sameText(seg, text)) { if (seg) rerender(seg.sid); return null; }
    const before = M.snapshot(model);
    const { seg: fresh, changedShare } = M.editText(seg, text);
    change([fresh]);
    if (record) recorded(before);
    if (!silent && changedShare > 0.6 && fresh.words.length > 2) showState(t("Saved edits; timings estimated for most of this segment"));
    return seg.sid;
  }

  function cancelEdit() {  // Esc: the text as it was, the keyboard back on the word
    if (!editing) return;
    const sid = editing.seg.sid; editing = null; rerender(sid);
    place(pos, { focus: true });
  }

  async function splitAtCaret() {
    const { seg, el } = editing;
    const { text, at } = M.splitPoint(el.textContent, caretText(el) || "");
    await step(async () => {
      el.textContent = text;
      commit({ silent: true, record: false });
      if (M.canSplit(M.segOf(model, seg.sid), at)) await structural([{ op: "split", sid: seg.sid, at }]);
    });
  }

  async function mergeWith(sid) {  // sid and the segment after it
    const i = M.segIndex(model, sid);
    if (i < 0 || i >= model.segments.length - 1) return;
    const q = M.mergeQuestion(model, sid);
    if (q) {
      const text = document.createElement("p");
      text.textContent = q.words === 1
        ? t("The next segment is {lose}'s. Merged, its 1 word becomes {keep}'s.", { lose: q.lose, keep: q.keep })
        : t("The next segment is {lose}'s. Merged, its {n} words become {keep}'s.", { lose: q.lose, keep: q.keep, n: q.words });
      $("confirm-dialog-ok").textContent = t("Merge");
      if (!await dialog("confirm-dialog", t("Merge two speakers' segments?"), () => [text])) return;
    }
    await step(() => structural([{ op: "merge", sid }]));
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
    const seg = M.segOf(model, sid);
    const choice = select([["", t("No speaker")], ...model.speakers.map((s) => [s.id, s.name]), ["__new", t("New speaker…")]], seg.speaker || "");
    const newName = document.createElement("input"); newName.placeholder = t("Name of the new speaker");
    const single = document.createElement("input"); single.type = "checkbox"; single.checked = !!onlyThis;
    const singleLabel = document.createElement("label"); singleLabel.className = "inline"; singleLabel.append(single, " " + t("Only this segment (otherwise the whole run of this speaker's consecutive segments)"));
    if (!await dialog("speaker-dialog", t("Who is speaking?"), () => [field(t("Speaker"), choice), field(t("New speaker's name"), newName), singleLabel])) return;
    await step(async () => {
      let target = choice.value || null;
      if (target === "__new") {
        const key = M.nextSpeakerKey(model);
        if (!await structural([{ op: "add_speaker", key, name: newName.value.trim() || t("Speaker {n}", { n: key.slice(1) }) }])) return;
        target = key;
      }
      change(M.speakerRun(model, sid, single.checked).map((id) => M.withFields(M.segOf(model, id), { speaker: target, sc: null })));
    });
  }

  async function renameSpeaker(id) {
    const s = model.speakers.find((x) => x.id === id);
    const input = document.createElement("input"); input.value = s.name; input.maxLength = 100; input.required = true;
    if (!await dialog("speaker-dialog", t("Rename {name}", { name: s.name }), () => [field(t("Name (everywhere in this transcript)"), input)])) return;
    const name = input.value.trim();
    if (!name || name === s.name) return;
    step(() => {
      model.speakers = model.speakers.map((x) => (x.id === id ? { ...x, name } : x));
      renderAll();
      saver.queue([{ op: "rename_speaker", speaker: id, name }]);
    });
  }

  async function mergeSpeakers() {
    const opts = model.speakers.map((s) => [s.id, s.name]);
    const from = select(opts, opts[1] && opts[1][0]), into = select(opts, opts[0][0]);
    if (!await dialog("speaker-dialog", t("Merge two speakers"), () => [field(t("Merge"), from), field(t("into"), into)])) return;
    if (from.value === into.value) return;
    await step(() => structural([{ op: "merge_speakers", from: from.value, into: into.value }]));
  }

  async function addSpeaker() {
    const input = document.createElement("input"); input.maxLength = 100;
    if (!await dialog("speaker-dialog", t("New speaker"), () => [field(t("Name"), input)])) return;
    const key = M.nextSpeakerKey(model);
    await step(() => structural([{ op: "add_speaker", key, name: input.value.trim() || t("Speaker {n}", { n: key.slice(1) }) }]));
  }

  async function noteFor(sid) {
    const seg = M.segOf(model, sid);
    const area = document.createElement("textarea"); area.value = seg.note || ""; area.maxLength = 20000;
    if (!await dialog("speaker-dialog", t("Note on this segment"), () => [field(t("Note"), area)])) return;
    step(() => change([M.withFields(M.segOf(model, sid), { note: area.value.trim() })]));
  }

  async function timingFor(sid) {
    const seg = M.segOf(model, sid);
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
    const result = M.retime(model, sid, Math.round(Number(start.value) * 1000), Math.round(Number(end.value) * 1000));
    if (result.error) { alert(result.error); return; }
    step(() => change(result.segments));
    if (result.overlaps) showState(t("Saved; this segment now overlaps its neighbour"));
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
  function highlight(scroll = true) {
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
      if (scroll && follow && !editing && (r.top < 0 || r.bottom > window.innerHeight - 80)) w.scrollIntoView({ block: "center" });
    }
  }
  function loop() { highlight(); if (!audio.paused) raf = requestAnimationFrame(loop); }
  audio.addEventListener("play", () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(loop); });
  audio.addEventListener("seeked", () => highlight(false));
  audio.addEventListener("pause", () => highlight(false));
  window.addEventListener("wheel", () => { if (!audio.paused) { follow = false; $("jump-current").classList.remove("hidden"); } }, { passive: true });
  $("jump-current").addEventListener("click", () => { follow = true; $("jump-current").classList.add("hidden"); if (spans[current]) spans[current].scrollIntoView({ block: "center" }); });

  function attach(f) {
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(f);
    $("audio-label").textContent = t("Audio: {name} (on this device)", { name: f.name });
    $("audio-warning").textContent = "";
    audio.addEventListener("loadedmetadata", () => {
      if (Math.abs(audio.duration - model.duration) > 1) $("audio-warning").textContent = t("This file may not match: its length differs from the transcript's.");
      if (pendingSeek != null) { audio.currentTime = pendingSeek; pendingSeek = null; }
    }, { once: true });
    audio.playbackRate = Number($("speed").value);
  }
  function seek(ms, { scroll = true } = {}) {  // a click's word is in view already: scrolling would move it from under the pointer
    const at = (ms + 1) / 1000;  // 1 ms in, so the previous word does not light up
    if (!audio.src) { pendingSeek = at; $("audio-warning").textContent = t("Attach the recording to play from {time}.", { time: clock(ms) }); return; }
    audio.currentTime = at; highlight(scroll);
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
  const wordEl = (f) => { const s = $(`s-${f.sid}`); return s ? s.querySelectorAll(".w")[f.i] : null; };
  function clearFound() { root.querySelectorAll(".is-found, .is-found-cur").forEach((w) => w.classList.remove("is-found", "is-found-cur")); }
  function runFind() {
    clearFound(); foundAt = -1;
    const q = $("find-text").value.trim();
    found = M.findWords(model, q);
    if (!q) { $("find-count").textContent = ""; return; }
    for (const f of found) { const el = wordEl(f); if (el) el.classList.add("is-found"); }
    stepFound(1);
  }
  function stepFound(d) {
    if (!found.length) { $("find-count").textContent = t("No matches"); return; }
    root.querySelectorAll(".is-found-cur").forEach((w) => w.classList.remove("is-found-cur"));
    foundAt = (foundAt + d + found.length) % found.length;
    const el = wordEl(found[foundAt]);
    if (el) { el.classList.add("is-found-cur"); el.scrollIntoView({ block: "center" }); }
    $("find-count").textContent = t("{n} of {total}", { n: foundAt + 1, total: found.length });
  }
  function replace(all) {
    const q = $("find-text").value.trim(), by = $("replace-text").value.trim();
    if (!q || !found.length) return;
    step(() => {
      if (all) change([...new Set(found.map((f) => f.sid))].map((sid) => M.replaceIn(M.segOf(model, sid), q, by, null)));
      else { const f = found[Math.max(0, foundAt)]; change([M.replaceIn(M.segOf(model, f.sid), q, by, f.i)]); }
    });
    runFind();
  }
  const openFind = () => { $("findbar").classList.remove("hidden"); $("find-text").focus(); $("find-text").select(); };
  $("find-open").addEventListener("click", openFind);
  $("find-text").addEventListener("input", runFind);
  $("find-text").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); stepFound(e.shiftKey ? -1 : 1); } });
  $("find-next").addEventListener("click", () => stepFound(1));
  $("find-prev").addEventListener("click", () => stepFound(-1));
  $("find-close").addEventListener("click", () => { $("findbar").classList.add("hidden"); clearFound(); });
  if (editable) { $("replace-one").addEventListener("click", () => replace(false)); $("replace-all").addEventListener("click", () => replace(true)); }

  // ---------- events ----------
  root.addEventListener("click", (e) => {
    const seg = e.target.closest(".seg");
    if (!seg) return;
    const sid = Number(seg.dataset.sid);
    if (e.target.closest(".seg-spk")) { if (editable) speakerMenu(sid, e.shiftKey); return; }
    const time = e.target.closest(".seg-time");
    if (time) { if (editable && e.altKey) timingFor(sid); else seek(Number(time.dataset.seek)); return; }
    const w = e.target.closest(".w");
    if (editing && editing.seg.sid === sid) { if (w && e.altKey) seek(Number(w.dataset.s)); return; }
    const word = w ? Array.from(seg.querySelectorAll(".w")).indexOf(w) : 0;
    place({ seg: M.segIndex(model, sid), word: Math.max(0, word) }, { focus: true, scroll: false });
    if (w) seek(Number(w.dataset.s), { scroll: false });
  });
  if (bar) bar.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]"), sid = selectedSid();
    if (!b || sid == null) return;
    const a = b.dataset.action;
    if (a === "edit") startEdit(sid, stop && stop.classList.contains("w") ? stop : null);
    else if (a === "speaker") speakerMenu(sid, false);
    else if (a === "timing") timingFor(sid);
    else if (a === "note") noteFor(sid);
    else if (a === "merge-next") mergeWith(sid);
  });
  root.addEventListener("focusin", (e) => { if (e.target === stop && !selected) place(pos); });
  const skipTo = $("skip-transcript");
  if (skipTo) skipTo.addEventListener("click", (e) => { if (!stop) return; e.preventDefault(); place(pos, { focus: true }); });
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
        e.preventDefault(); const sid = commit(); const i = M.segIndex(model, sid ?? Number(e.target.closest(".seg").dataset.sid));
        const next = model.segments[i + 1];
        if (next) { place({ seg: i + 1, word: 0 }); startEdit(next.sid); } else place(pos, { focus: true });
      } else if (e.key === "Enter") { e.preventDefault(); await splitAtCaret(); }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancelEdit(); }
      else if (e.key === "Backspace") {
        const sel = window.getSelection();
        if (sel.isCollapsed && (caretText(editing.el) || "") === "") {
          e.preventDefault(); const sid = editing.seg.sid; commit(); const i = M.segIndex(model, sid);
          if (i > 0) await mergeWith(model.segments[i - 1].sid);
        }
      }
      return;
    }
    if (e.target !== stop || e.altKey) return;
    const to = move(countsOf(model), pos, e.key, { ctrl: e.ctrlKey || e.metaKey });
    if (to) { e.preventDefault(); place(to, { focus: true }); return; }
    if (e.key === "Enter") {
      e.preventDefault();
      if (editable) startEdit(model.segments[pos.seg].sid, stop.classList.contains("w") ? stop : null);
      else if (stop.dataset.s) seek(Number(stop.dataset.s));
    }
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
      KeyS: () => { const sid = editing ? editing.seg.sid : selectedSid(); if (sid != null && editable) speakerMenu(sid, false); } };
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
      noteTimer = setTimeout(() => {
        const text = $("t-note").value;
        if (text === model.note) return;
        step(() => { model.note = text; saver.queue([{ op: "note", text }]); });
      }, SAVE_DELAY_MS);
      showState(t("Unsaved changes"));
    });
    const title = $("t-title");
    title.setAttribute("contenteditable", "plaintext-only");
    if (title.contentEditable !== "plaintext-only") title.setAttribute("contenteditable", "true");
    title.setAttribute("aria-label", t("Title (click to rename)"));
    title.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); title.blur(); } });
    title.addEventListener("blur", () => {
      const text = title.textContent.replace(/\s+/g, " ").trim();
      if (!text) { title.textContent = model.title; return; }
      if (text !== model.title) step(() => { model.title = text; document.title = `${text} · Sotto`; saver.queue([{ op: "title", text }]); });
    });
    $("delete").addEventListener("click", async () => {
      if (!confirm(t("Delete this transcript for good? This cannot be undone."))) return;
      try { await api("DELETE", `/api/v1/transcripts/${model.id}`); saver.drop(); window.location.assign("/"); }
      catch (err) { alert(err.message); }
    });
    $("conflict-reload").addEventListener("click", () => { saver.drop(); window.location.reload(); });
    $("conflict-keep").addEventListener("click", () => { saver.flush({ force: true }); });
    $("conflict-copy").addEventListener("click", async () => {
      const sids = new Set(saver.pending.filter((o) => o.sid != null).map((o) => o.sid));
      const text = model.segments.filter((s) => sids.has(s.sid)).map((s) => s.words.map((w) => w.t).join(" ")).join("\n\n");
      try { await navigator.clipboard.writeText(text); $("conflict-text").textContent = t("Your text is on the clipboard."); } catch (err) { prompt(t("Copy your text:"), text); }
    });
    // Save on leaving; warn while something is unsaved.
    const leave = () => { if (saver.pending.length && !saver.conflict) saver.flush({ keepalive: true }); };
    window.addEventListener("pagehide", leave);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") leave(); });
    window.addEventListener("beforeunload", (e) => { if (saver.unsaved || editing) { e.preventDefault(); e.returnValue = ""; } });
  }

  // Exports reflect saved edits: save first.
  $("export-menu").addEventListener("click", async (e) => {
    const a = e.target.closest("a[data-export]");
    if (!a) return;
    e.preventDefault();
    if (editing) commit();
    try {
      await saver.settle();
      // A private transcript's backend makes the file in the browser (the server cannot read it).
      const blob = backend.export ? await backend.export(a.dataset.export, model) : await api("GET", a.getAttribute("href"), undefined, { blob: true });
      download(blob, `${model.title}.${a.dataset.export}`);
    } catch (err) { alert(err.message); }
    $("export-menu").open = false;
  });

  // A second tab on the same transcript: say so (their saves would conflict).
  if ("BroadcastChannel" in window) {
    const channel = new BroadcastChannel(`sotto-transcript-${model.id}`);
    channel.onmessage = (e) => { if (e.data === "open") { channel.postMessage("here"); } showState(t("Also open in another tab")); };
    channel.postMessage("open");
  }

  renderAll();
  undoButtons();
  if (file) attach(file);
  // /t/<id>?t=83.12#s-42: scroll to the segment, flash it, and set the time (no autoplay).
  const params = new URLSearchParams(location.search);
  const target = location.hash.startsWith("#s-") ? $(location.hash.slice(1)) : null;
  if (target) { place({ seg: Math.max(0, M.segIndex(model, Number(target.dataset.sid))), word: 0 }); target.scrollIntoView({ block: "center" }); target.classList.add("is-flash"); }
  if (params.has("t")) seek(Math.round(Number(params.get("t")) * 1000));

  window.SottoEditor = { model, flush: (o) => saver.flush(o), settle: () => saver.settle(), undo, redo, audio };  // for people debugging, and the tests
  return window.SottoEditor;
}

if (!window.__sottoManualMount) mount();
