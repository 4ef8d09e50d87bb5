// Voice profiles page: rename, merge and delete (each through one dialog, where Enter confirms and Esc
// cancels), and enrolment from a short recording sent as the request body (read in memory on the server).
const table = document.getElementById("voice-profiles");
if (table) {
  const { api, csrf } = window.Sotto;
  const { t } = window.SottoI18n;
  const status = document.getElementById("voice-status");
  const dialog = document.getElementById("voice-dialog"), form = dialog.querySelector("form");
  const title = document.getElementById("voice-dialog-title"), body = document.getElementById("voice-dialog-body");
  const error = document.getElementById("voice-dialog-error"), ok = document.getElementById("voice-dialog-ok");
  let action = null;

  const say = (text, kind) => { status.className = kind; status.textContent = text; };
  const profiles = () => [...table.querySelectorAll("li[data-profile]")].map((tr) => ({ id: tr.dataset.profile, name: tr.dataset.name }));

  function ask(heading, content, label, run, focus, danger) {
    title.textContent = heading; body.replaceChildren(...content); error.textContent = ""; ok.textContent = label;
    ok.classList.toggle("danger", !!danger);
    action = run;
    dialog.showModal();
    (focus || ok).focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await action(); dialog.close("ok"); window.location.reload(); } catch (e) { error.textContent = e.message; }
  });

  table.addEventListener("click", (event) => {
    const row = event.target.closest("li[data-profile]");
    if (!row) return;
    const { profile: id, name } = row.dataset;
    const p = (text) => { const el = document.createElement("p"); el.textContent = text; return el; };
    if (event.target.closest(".voice-rename")) {
      const input = document.createElement("input"); input.value = name; input.maxLength = 100; input.setAttribute("aria-label", t("New name"));
      ask(t("Rename {name}", { name }), [input], t("Rename"), () => api("PATCH", `/api/v1/voice-profiles/${id}`, { name: input.value.trim() }), input);
    } else if (event.target.closest(".voice-merge")) {
      const select = document.createElement("select"); select.setAttribute("aria-label", t("Merge into"));
      for (const other of profiles().filter((x) => x.id !== id)) {
        const o = document.createElement("option"); o.value = other.id; o.textContent = other.name; select.append(o);
      }
      ask(t("Merge {name} into…", { name }), [p(t("{name}'s voices join the chosen profile, and {name} is deleted.", { name })), select], t("Merge"),
        () => api("POST", `/api/v1/voice-profiles/${id}/merge`, { into: select.value }));
    } else if (event.target.closest(".voice-delete")) {
      ask(t("Delete {name}?", { name }), [p(t("The profile and its voice embeddings are deleted for good. Transcripts keep the names already given."))],
        t("Delete"), () => api("DELETE", `/api/v1/voice-profiles/${id}`), null, true);
    }
  });

  const enrol = document.getElementById("voice-enrol");
  if (enrol) {
    enrol.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(enrol), file = data.get("file");
      const query = new URLSearchParams({ name: String(data.get("name")).trim(), consent_note: String(data.get("consent_note")).trim() });
      say(t("Reading the recording…"), "muted");
      try {
        const response = await fetch(`/api/v1/workspaces/${table.dataset.workspace}/voice-profiles?${query}`, {
          method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/octet-stream" }, body: file,
        });
        if (!response.ok) { const reply = await response.json().catch(() => ({})); throw new Error(reply.detail || t("The appliance answered {status}.", { status: response.status })); }
        window.location.reload();
      } catch (e) { say(e.message, "error"); }
    });
  }
}
