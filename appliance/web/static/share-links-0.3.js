// Share links of a standard transcript: list (views, expiry, password, formats), create, revoke.
const panel = document.getElementById("links-panel");
if (panel) {
  const { api } = window.Sotto;
  const { t } = window.SottoI18n;
  const id = panel.dataset.transcript;
  const list = document.getElementById("links-list"), form = document.getElementById("links-form");
  const status = document.getElementById("links-status");
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };
  const day = (iso) => (iso ? iso.slice(0, 10) : "");

  function confirmRevoke() {
    const dialog = document.getElementById("links-revoke");
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = ""; dialog.showModal();
    });
  }

  async function load() {
    const links = (await api("GET", `/api/v1/transcripts/${id}/shares`)).filter((l) => !l.sealed);
    const live = links.filter((l) => !l.revoked);
    list.replaceChildren(...(live.length ? live.map((l) => {
      const li = el("li", null, "link-item");
      const facts = [l.views === 1 ? t("1 view") : t("{n} views", { n: window.SottoI18n.number(l.views) }),
        l.expires_at ? t("expires {day}", { day: day(l.expires_at) }) : t("no expiry"),
        l.password ? t("password") : t("no password"), l.formats.map((f) => f.toUpperCase()).join(", ") || t("no downloads")];
      li.append(el("span", t("Made {day}: {facts}", { day: day(l.created_at), facts: facts.join(" · ") })));
      const b = el("button", t("Revoke…"), "danger"); b.type = "button";
      b.addEventListener("click", async () => { if (await confirmRevoke()) { await api("DELETE", `/api/v1/shares/${l.id}`); load(); } });
      li.append(" ", b);
      return li;
    }) : [el("li", t("No links yet."), "muted")]));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const made = await api("POST", `/api/v1/transcripts/${id}/shares`, {
        expires_in_days: data.get("expires") ? Number(data.get("expires")) : null,
        password: data.get("password") || null,
        formats: data.getAll("formats"),
        include_speakers: !!data.get("include_speakers"),
        include_timestamps: !!data.get("include_timestamps"),
      });
      status.textContent = ""; form.reset();
      document.getElementById("links-url").textContent = window.location.origin + made.path;
      document.getElementById("links-made").classList.remove("hidden");
      document.getElementById("links-new").open = false;
      load();
    } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
  });
  load().catch((err) => list.replaceChildren(el("li", err.message, "error")));
}
