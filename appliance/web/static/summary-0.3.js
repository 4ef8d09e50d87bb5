// The Summary panel of a transcript page: start a summary and watch it being written (server-sent events),
// cancel, regenerate, edit (a new version); every cited moment is a button that plays the recording from
// there through the editor's own time buttons; questions answered with cited moments.
const panel = document.getElementById("summary-panel");
if (panel) {
  const id = panel.dataset.transcript, editable = panel.dataset.editable === "true";
  const $ = (x) => document.getElementById(x);
  const { t } = window.SottoI18n;
  const state = $("summary-state"), body = $("summary-body"), stream = $("summary-stream");
  const start = $("summary-start"), cancel = $("summary-cancel"), edit = $("summary-edit");
  const doc = JSON.parse(document.getElementById("doc").textContent);
  // The page's model: segments in transcript order (a citation's number is its position), times in ms.
  const segments = (doc.segments || []).map((x) => ({ sid: x.sid, start: x.s / 1000, text: (x.words || []).map((w) => w.t).join(" ") }));
  let latest = null, run = null, source = null;

  const clock = (seconds) => window.Sotto.clock(Math.round(seconds * 1000));
  const show = (el, on) => el && el.classList.toggle("hidden", !on);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; };

  // A cited segment (its position) plays through the editor: its time button seeks the player there.
  function play(position) {
    const seg = segments[position];
    const row = seg && document.getElementById(`s-${seg.sid}`);
    const button = row && row.querySelector(".seg-time");
    if (!button) return;
    row.scrollIntoView({ block: "center" });
    button.click();
  }
  function cites(ids, matched) {
    const span = el("span", "", "cites");
    for (const i of ids || []) {
      if (!segments[i]) continue;
      const b = el("button", clock(segments[i].start), "cite");
      b.type = "button"; b.dataset.segment = String(i);
      const quote = segments[i].text.trim().slice(0, 120);
      b.title = matched ? t("Matched by its words: “{text}” (play from here)", { text: quote }) : t("Cited: “{text}” (play from here)", { text: quote });
      b.addEventListener("click", () => play(i));
      span.append(" ", b);
    }
    return span;
  }
  function list(title, items, render) {
    if (!items || !items.length) return;
    body.append(el("h3", title));
    const ul = el("ul", "", "plain");
    for (const item of items) { const li = el("li"); render(li, item); ul.append(li); }
    body.append(ul);
  }
  function render(stored) {
    body.replaceChildren();
    if (!stored) return;
    const s = stored.summary;
    const p = el("p", s.summary); p.append(cites(s.summary_segments, s.summary_matched)); body.append(p);
    const claim = (li, c) => { li.append(c.text); li.append(cites(c.segments, c.matched)); };
    list(t("Key points"), s.key_points, claim);
    list(t("Decisions"), s.decisions, claim);
    list(t("Action items"), s.action_items, (li, a) => {
      li.append(a.text);
      const who = [a.owner && t("owner: {owner}", { owner: a.owner }), a.due && t("due: {due}", { due: a.due })].filter(Boolean).join(", ");
      if (who) li.append(el("span", ` (${who})`, "muted"));
      li.append(cites(a.segments, a.matched));
    });
    list(t("Open questions"), s.open_questions, claim);
    list(t("Chapters"), s.chapters, (li, c) => { li.append(cites([c.segment]), " ", c.title); });
    list(t("Who spoke"), s.speakers, (li, sp) => { li.append(t("{name}: {time} ({share}), {n} cited", { name: sp.name, time: clock(sp.talk_seconds), share: new Intl.NumberFormat(window.SottoI18n.lang, { style: "percent" }).format(sp.share), n: window.SottoI18n.number(sp.contributions) })); });
    if (s.note) body.append(el("p", s.note, "why"));
    const origin = stored.origin === "edited" ? t("edited") : stored.model ? t("by {model}", { model: stored.model }) : t("by the model");
    body.append(el("p", t("Version {n} · {origin} · {when}", { n: stored.version, origin, when: window.SottoI18n.when(stored.created_at) }), "why"));
    // Which of the workspace's instructions shaped it: they can change between versions.
    if (s.instructions_version) body.append(el("p", t("Written with the workspace's instructions, version {n}.", { n: s.instructions_version }), "why"));
  }
  function idle(message) {
    run = null;
    show(cancel, false); show(stream, false);
    if (start) { start.textContent = latest ? t("Regenerate") : t("Summarize"); start.disabled = false; show(start, true); }
    show(edit, !!latest && editable);
    state.textContent = message;
  }
  function watch(r) {
    run = r;
    if (start) start.disabled = true;
    show(cancel, true); show(edit, false);
    stream.textContent = ""; show(stream, true);
    state.textContent = t("Writing the summary…");
    if (source) source.close();
    source = new EventSource(`/api/v1/summary-runs/${r.id}/events`);
    // The model writes JSON; while it does, show its words without the punctuation of the format.
    let raw = "";
    source.addEventListener("text", (e) => {
      raw += JSON.parse(e.data).text;
      stream.textContent = raw.replace(/"(\w+)":\s*/g, (_, key) => `${key.replace(/_/g, " ")}: `).replace(/[{}"]/g, "").replace(/\[(?!\d)|(?<!\d)\]/g, "").replace(/,\s*/g, ", ");
    });
    source.addEventListener("state", (e) => {
      const d = JSON.parse(e.data);
      state.textContent = d.state === "waiting" ? t("Waiting for a transcription to finish (transcription goes first)…")
        : d.parts > 1 && d.part > d.parts ? t("Writing the summary: part {part} of {parts}, merging…", { part: d.parts, parts: d.parts })
        : d.parts > 1 ? t("Writing the summary: part {part} of {parts}…", { part: d.part, parts: d.parts }) : t("Writing the summary…");
    });
    const end = async (e) => {
      source.close(); source = null;
      const d = JSON.parse(e.data);
      if (d.state === "done") { await load(); idle(""); }
      else idle(d.state === "cancelled" ? t("Cancelled. Nothing was stored.") : t("The summary failed: {error}", { error: d.error }));
    };
    for (const name of ["done", "failed", "cancelled"]) source.addEventListener(name, end);
  }
  async function load() {
    const out = await window.Sotto.api("GET", `/api/v1/transcripts/${id}/summaries`);
    latest = out.latest; render(latest);
    return out;
  }

  (async () => {
    try {
      const out = await load();
      if (out.running) { watch(out.running); return; }
      if (!out.assist.available) {
        // The reason is the server's diagnostic (a path, a setting), shown as it says it, marked English.
        idle(t("AI is not available on this appliance:"));
        const reason = el("span", out.assist.reason); reason.lang = "en";
        state.append(" ", reason);
        if (start) start.disabled = true;
        return;
      }
      idle(latest ? "" : out.assist.where === "this appliance" ? t("No summary yet. Made on this appliance; nothing leaves your network.") : t("No summary yet. Made by your on-prem AI server; nothing leaves your network."));
    } catch (e) { state.textContent = t("Could not load the summary: {reason}", { reason: e.message }); }
  })();

  if (start) start.addEventListener("click", async () => {
    const language = $("summary-language") ? $("summary-language").value : "";
    try { watch(await window.Sotto.api("POST", `/api/v1/transcripts/${id}/summaries`, language ? { language } : {})); }
    catch (e) { idle(t("Could not start: {reason}", { reason: e.message })); }
  });
  if (cancel) cancel.addEventListener("click", async () => {
    if (!run) return;
    try { await window.Sotto.api("DELETE", `/api/v1/summary-runs/${run.id}`); } catch (e) { state.textContent = e.message; }
  });

  const editor = $("summary-editor"), text = $("summary-text");
  const closeEditor = () => { show(editor, false); show(body, true); show(edit, true); edit.focus(); };
  if (edit) edit.addEventListener("click", () => {
    if (!latest) return;
    text.value = latest.summary.summary;
    show(editor, true); show(body, false); show(edit, false); text.focus();
  });
  if (editor) {
    $("summary-edit-cancel").addEventListener("click", closeEditor);
    editor.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); closeEditor(); }
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); editor.requestSubmit(); }
    });
    editor.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const summary = { ...latest.summary, summary: text.value.trim() };
        await window.Sotto.api("PUT", `/api/v1/transcripts/${id}/summaries`, { base_version: latest.version, summary });
        await load(); closeEditor(); state.textContent = t("Saved as a new version.");
      } catch (err) { state.textContent = t("Not saved: {reason}", { reason: err.message }); }
    });
  }

  const askForm = $("ask-form"), question = $("ask-question"), answer = $("ask-answer");
  askForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = question.value.trim();
    if (!q) { question.focus(); return; }
    answer.replaceChildren(el("p", t("Looking in the transcript…"), "muted"));
    try {
      const a = await window.Sotto.api("POST", `/api/v1/transcripts/${id}/ask`, { question: q });
      const p = el("p", a.answer, a.found ? "" : "muted");
      if (a.found) p.append(cites(a.citations.map((c) => c.segment), a.grounding !== "cited"));
      answer.replaceChildren(el("p", q, "why"), p);
    } catch (err) { answer.replaceChildren(el("p", t("No answer: {reason}", { reason: err.message }), "error")); }
  });
}
