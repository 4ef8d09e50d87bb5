// The Revisions panel: the transcript's saved history, newest first; view an earlier version read-only
// and restore it (the server keeps the version it replaces, so a restore is itself undoable).
const panel = document.getElementById("revisions-panel");
const details = document.getElementById("revisions");
if (panel && details && panel.dataset.private !== "true") {
  const { api } = window.Sotto;
  const { t } = window.SottoI18n;
  // The editor says "Saved {time}" in the page's language: match its translation, whatever the word order.
  const pattern = (message) => new RegExp("^" + t(message).replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{time\}/g, ".*") + "$");
  const savedTexts = [pattern("Saved {time}"), pattern("Saved (merged with another edit) {time}")];
  // "Saved" alone: the page as loaded, nothing edited yet.
  const isSaved = (edited) => (!edited && saveState.textContent === t("Saved")) || savedTexts.some((re) => re.test(saveState.textContent));
  const id = panel.dataset.transcript;
  const list = document.getElementById("revision-list");
  const dialog = document.getElementById("revision-dialog");
  const preview = document.getElementById("revision-preview");
  const error = document.getElementById("revision-error");
  const saveState = document.getElementById("save-state");
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };
  // One time format across the app, as the server writes it (static/i18n-0.1.js).
  const when = (iso) => window.SottoI18n.when(iso);
  let shown = null;

  async function load() {
    const history = await api("GET", `/api/v1/transcripts/${id}/revisions`);
    list.replaceChildren(...history.items.map((item) => {
      const li = el("li", null, "revision-item");
      const head = el("span", null, "revision-what");
      head.append(el("strong", t("Revision {n}", { n: item.revision })), ` · ${item.description}`);
      const meta = el("span", [item.by, when(item.at)].filter(Boolean).join(" · "), "muted");
      li.append(head, meta);
      if (item.current) {
        li.append(el("span", t("Current"), "badge"));
      } else if (item.viewable) {
        const view = el("button", t("View…")); view.type = "button";
        view.setAttribute("aria-label", t("View revision {n}", { n: item.revision }));
        view.addEventListener("click", () => open(item));
        li.append(view);
      } else {
        li.append(el("span", t("No longer kept"), "muted"));
      }
      return li;
    }), ...(history.older ? [el("li", history.older === 1 ? t("1 older revision is no longer kept.") : t("{n} older revisions are no longer kept.", { n: window.SottoI18n.number(history.older) }), "muted")] : []));
  }

  async function open(item) {
    error.textContent = "";
    const snap = await api("GET", `/api/v1/transcripts/${id}/revisions/${item.revision}`);
    const names = Object.fromEntries(snap.speakers.map((s) => [s.key, s.display_name || s.label]));
    document.getElementById("revision-dialog-title").textContent = snap.title ? t("Revision {n}: {title}", { n: item.revision, title: snap.title }) : t("Revision {n}", { n: item.revision });
    document.getElementById("revision-dialog-meta").textContent = [item.description, item.by, when(item.at)].filter(Boolean).join(" · ");
    const body = snap.segments.map((seg) => {
      const p = el("p", null, "revision-seg");
      p.append(el("span", window.Sotto.clock(seg.start * 1000), "muted"), " ");
      if (seg.speaker) p.append(el("strong", `${names[seg.speaker] || seg.speaker}: `));
      p.append(seg.text.trim());
      if (seg.note) p.append(el("span", " " + t("(Note: {note})", { note: seg.note }), "muted"));
      return p;
    });
    if (snap.note) body.unshift(el("p", t("Notes: {note}", { note: snap.note }), "muted"));
    preview.replaceChildren(...(body.length ? body : [el("p", t("No text."), "muted")]));
    shown = item;
    dialog.returnValue = ""; dialog.showModal();
  }

  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok" || !shown) return;
    const item = shown;
    // Unsaved edits would be saved over the restored version (or conflict with it): let them land first.
    if (!isSaved()) {
      error.textContent = t("Your latest changes are still being saved. Try again in a moment.");
      dialog.showModal(); return;
    }
    try {
      await api("POST", `/api/v1/transcripts/${id}/revisions/${item.revision}/restore`);
      window.location.reload();
    } catch (err) { error.textContent = err.message; dialog.showModal(); }
  });

  // Focus opens on the preview (so arrow keys scroll it); Enter there still means the dialog's OK.
  preview.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); dialog.querySelector("form").requestSubmit(document.getElementById("revision-restore")); }
  });

  details.addEventListener("toggle", () => { if (details.open) load().catch((err) => list.replaceChildren(el("li", err.message, "error"))); });
  // A save adds a revision: keep an open list current.
  new MutationObserver(() => { if (details.open && isSaved(true)) load().catch(() => {}); })
    .observe(saveState, { childList: true, characterData: true, subtree: true });
}
