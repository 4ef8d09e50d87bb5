// "Who spoke how much" on a transcript page: asked of the server each time the panel opens, so the
// figures follow every edit and rename saved since the page loaded.
const panel = document.getElementById("speaker-stats");
if (panel) {
  const { t } = window.SottoI18n;
  const state = panel.querySelector("[data-state]"), table = panel.querySelector("table"), body = table.querySelector("tbody");
  const clock = (seconds) => {
    const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${String(r).padStart(2, "0")}`;
  };
  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  panel.addEventListener("toggle", async () => {
    if (!panel.open) return;
    state.textContent = t("Loading…"); state.classList.remove("hidden");
    try {
      const stats = await window.Sotto.api("GET", `/api/v1/transcripts/${panel.dataset.transcript}/speakers/analytics`);
      body.replaceChildren(...stats.speakers.map((s) => {
        const tr = document.createElement("tr");
        tr.append(cell(s.name), cell(`${clock(s.talk_seconds)} (${Math.round(s.share * 100)}%)`), cell(String(s.turns)),
          cell(clock(s.longest_turn_seconds)), cell(String(s.interruptions)));
        return tr;
      }));
      table.classList.toggle("hidden", !stats.speakers.length);
      state.textContent = stats.speakers.length ? "" : t("Nobody's speech is labelled yet.");
      state.classList.toggle("hidden", !!stats.speakers.length);
    } catch (e) {
      state.textContent = t("Could not load the figures: {error}", { error: e.message });
    }
  });
}
