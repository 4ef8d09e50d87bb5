// Known voices on a transcript page: each speaker whose voice was kept shows the profile it sounds like
// ("Sounds like Alice (97%)") with Confirm / Not them, or "This is…" to enrol it. Nothing is renamed until
// a person confirms; the server makes the rename an ordinary edit, and the page reloads to show it.
const box = document.getElementById("voice-hints");
if (box) {
  const { api } = window.Sotto;
  const { t } = window.SottoI18n;
  const tid = box.dataset.transcript, ws = box.dataset.workspace;
  const list = document.getElementById("voice-hint-list"), problem = document.getElementById("voice-hint-error");
  const doc = JSON.parse(document.getElementById("doc").textContent);
  const nameOf = (key) => (doc.speakers.find((s) => s.id === key) || { name: key }).name;
  const dialog = document.getElementById("voice-dialog"), form = dialog.querySelector("form");
  const select = document.getElementById("voice-profile"), nameInput = document.getElementById("voice-name");
  const consent = document.getElementById("voice-consent"), dialogError = document.getElementById("voice-error");
  let current = null;

  const button = (text, extra, onClick) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = text; if (extra) b.className = extra;
    b.addEventListener("click", onClick);
    return b;
  };
  const text = (value, extra) => { const s = document.createElement("span"); s.textContent = value; if (extra) s.className = extra; return s; };

  async function act(call) {
    problem.textContent = "";
    try { await call(); location.reload(); } catch (e) { problem.textContent = e.message; }
  }

  function render(voices) {
    const items = voices.speakers.map((v) => {
      const li = document.createElement("li"), line = document.createElement("span"), row = document.createElement("div");
      li.dataset.speaker = v.speaker; row.className = "row";
      line.append(text(nameOf(v.speaker) + ": "));
      const url = `/api/v1/transcripts/${tid}/speakers/${encodeURIComponent(v.speaker)}`;
      if (v.state === "open" && v.profile_id) {
        line.append(text(t("Sounds like {name} ({score}%)", { name: v.profile_name, score: Math.round(v.score * 100) }), "voice-suggestion"));
        if (doc.editable) {
          row.append(button(t("Confirm"), "primary", () => act(() => api("POST", `${url}/confirm`, {}))),
            button(t("Not them"), "", () => act(() => api("POST", `${url}/dismiss`))));
        }
      } else if (v.state === "confirmed" && v.profile_name) {
        line.append(text(t("known voice: {name}", { name: v.profile_name }), "muted"));
      } else {
        line.append(text(t("no known voice"), "muted"));
      }
      if (voices.can_enrol && v.state !== "confirmed") row.append(button(t("This is…"), "", () => open(v.speaker)));
      li.append(line);
      if (row.childElementCount) li.append(row);
      return li;
    });
    list.replaceChildren(...items);
    box.classList.toggle("hidden", !items.length);
  }

  function sync() {
    const existing = !!select.value;
    document.getElementById("voice-name-row").classList.toggle("hidden", existing);
    document.getElementById("voice-consent-row").classList.toggle("hidden", existing);
  }

  async function open(key) {
    current = key;
    document.getElementById("voice-dialog-title").textContent = t("{name} is…", { name: nameOf(key) });
    dialogError.textContent = ""; nameInput.value = ""; consent.value = "";
    const fresh = document.createElement("option"); fresh.value = ""; fresh.textContent = t("A new person");
    select.replaceChildren(fresh);
    try {
      const listed = await api("GET", `/api/v1/workspaces/${ws}/voice-profiles`);
      for (const p of listed.profiles) { const o = document.createElement("option"); o.value = p.id; o.textContent = p.name; select.append(o); }
    } catch (e) { dialogError.textContent = e.message; }
    select.value = ""; sync();
    dialog.showModal(); nameInput.focus();
  }

  select.addEventListener("change", sync);
  // Enter in any field saves (the form's submit); Esc or Cancel close the dialog with nothing changed.
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = select.value ? { profile_id: select.value } : { name: nameInput.value.trim(), consent_note: consent.value.trim() };
    if (!select.value && !body.name) { dialogError.textContent = t("Give the person's name."); nameInput.focus(); return; }
    if (!select.value && !body.consent_note) { dialogError.textContent = t("Say who agreed to be recognised, and when."); consent.focus(); return; }
    try {
      await api("POST", `/api/v1/transcripts/${tid}/speakers/${encodeURIComponent(current)}/enrol`, body);
      dialog.close("ok");
      location.reload();
    } catch (e) { dialogError.textContent = e.message; }
  });

  api("GET", `/api/v1/transcripts/${tid}/voices`).then(render).catch((e) => { problem.textContent = e.message; box.classList.remove("hidden"); });
}
