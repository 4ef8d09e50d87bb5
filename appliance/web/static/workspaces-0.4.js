// Workspaces: members and their roles, invitations, the public-link policy, the AI settings (summary
// instructions, automatic summaries, earlier versions), a new shared workspace.
(function () {
  "use strict";
  const { t, when } = window.SottoI18n;
  const { api } = window.Sotto;
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };
  const ROLES = ["viewer", "member", "admin"];
  const ROLE_NAMES = { viewer: t("viewer"), member: t("member"), admin: t("admin") };

  function confirmRemove(email) {
    const dialog = document.getElementById("member-remove");
    document.getElementById("member-remove-who").textContent = email;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = ""; dialog.showModal();
    });
  }

  async function load(section) {
    const body = section.querySelector(".members tbody"), admin = section.dataset.role === "admin";
    const status = section.querySelector(".form-status");
    const say = (text, ok) => { if (status) { status.className = `form-status ${ok ? "ok" : "error"}`; status.textContent = text; } };
    const members = await api("GET", `/api/v1/workspaces/${section.dataset.workspace}/members`);
    body.replaceChildren(...members.map((m) => {
      const tr = el("tr");
      tr.append(el("td", m.email));
      const roleCell = el("td");
      const self = m.user_id === section.dataset.me;  // an admin cannot demote or remove themselves here
      if (admin && m.status === "member" && !self) {
        const select = el("select"); select.setAttribute("aria-label", t("Role of {email}", { email: m.email }));
        for (const r of ROLES) { const o = el("option", ROLE_NAMES[r] || r); o.value = r; o.selected = r === m.role; select.append(o); }
        select.addEventListener("change", async () => {
          try { await api("PUT", `/api/v1/workspaces/${section.dataset.workspace}/members`, { email: m.email, role: select.value }); say(t("{email} is now {role}.", { email: m.email, role: ROLE_NAMES[select.value] || select.value }), true); }
          catch (err) { say(err.message); load(section); }
        });
        roleCell.append(select);
      } else roleCell.textContent = ROLE_NAMES[m.role] || m.role;
      tr.append(roleCell, el("td", m.status === "invited" ? t("invited, not answered yet") : t("member")));
      if (admin) {
        const td = el("td");
        if (m.status === "member" && !self) {
          const b = el("button", t("Remove…"), "danger"); b.type = "button";
          b.addEventListener("click", async () => {
            if (!(await confirmRemove(m.email))) return;
            try { await api("DELETE", `/api/v1/workspaces/${section.dataset.workspace}/members/${m.user_id}`); load(section); say(t("{email} was removed.", { email: m.email }), true); }
            catch (err) { say(err.message); }
          });
          td.append(b);
        }
        tr.append(td);
      }
      return tr;
    }));
  }

  for (const section of document.querySelectorAll(".workspace[data-personal=false]")) {
    load(section).catch((err) => { section.querySelector(".members tbody").replaceChildren(el("tr", err.message, "error")); });
    const form = section.querySelector(".invite-form"), status = section.querySelector(".form-status");
    if (form) form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      try {
        const out = await api("PUT", `/api/v1/workspaces/${section.dataset.workspace}/members`, { email: data.get("email"), role: data.get("role") });
        status.className = "form-status ok";
        status.textContent = out.status === "member" ? t("{email} is now {role}.", { email: out.email, role: ROLE_NAMES[out.role] || out.role }) : t("Invited {email} as {role}: they join when they accept on their Account page.", { email: out.email, role: ROLE_NAMES[out.role] || out.role });
        form.reset(); load(section);
      } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
    });
    const policy = section.querySelector(".public-links");
    if (policy) policy.addEventListener("change", async () => {
      try {
        await api("PUT", `/api/v1/workspaces/${section.dataset.workspace}/policy`, { allow_public_links: policy.checked });
        status.className = "form-status ok"; status.textContent = policy.checked ? t("Public links allowed.") : t("Public links turned off; existing ones stop working.");
      } catch (err) { policy.checked = !policy.checked; status.className = "form-status error"; status.textContent = err.message; }
    });
  }

  // The AI settings: saved as a new version each time; an earlier version is restored as a new one, so
  // restoring never loses anything and needs no confirmation.
  function assistSettings(form, workspaceId) {
    const url = `/api/v1/workspaces/${workspaceId}/assist`;
    const status = form.querySelector(".form-status"), history = form.querySelector(".assist-history");
    const say = (text, ok) => { status.className = `form-status ${ok ? "ok" : "error"}`; status.textContent = text; };
    let base = 0;
    // What the person changed before the first load came back is theirs: that load must not overwrite it.
    const edited = new Set();
    form.addEventListener("input", (e) => edited.add(e.target.name));
    function show(out, keep = new Set()) {
      base = out.current.version;
      if (!keep.has("instructions")) form.elements.instructions.value = out.current.instructions;
      if (!keep.has("auto_summarize")) form.elements.auto_summarize.checked = out.current.auto_summarize;
      const older = out.versions.filter((v) => v.version !== out.current.version);
      history.hidden = older.length === 0;
      history.querySelector("ol").replaceChildren(...older.map((v) => {
        const li = el("li");
        const about = v.restored_from ? t("Version {version}, {when}, by {who} (restored version {from})", { version: v.version, when: when(v.created_at), who: v.created_by || t("a deleted account"), from: v.restored_from })
          : t("Version {version}, {when}, by {who}", { version: v.version, when: when(v.created_at), who: v.created_by || t("a deleted account") });
        const text = el("p", v.instructions || t("(no instructions)"), "muted");
        const auto = el("p", v.auto_summarize ? t("Every transcription summarised") : t("Summaries only when asked"), "muted");
        const button = el("button", t("Restore version {version}", { version: v.version })); button.type = "button";
        button.addEventListener("click", async () => {
          try { show(await api("POST", `${url}/restore`, { version: v.version })); say(t("Version {version} restored as version {now}.", { version: v.version, now: base }), true); form.elements.instructions.focus(); }
          catch (err) { say(err.message); }
        });
        li.append(el("span", about), text, auto, button);
        return li;
      }));
    }
    // A save waits for the first load: it carries the version it replaces (base_version).
    const loaded = api("GET", url).then((out) => show(out, edited)).catch((err) => say(err.message));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await loaded;
        show(await api("PUT", url, { instructions: form.elements.instructions.value, auto_summarize: form.elements.auto_summarize.checked, base_version: base }));
        say(t("Saved as version {version}.", { version: base }), true);
      } catch (err) { say(err.message); }
    });
  }
  for (const section of document.querySelectorAll(".workspace")) {
    const form = section.querySelector(".assist-form");
    if (form) assistSettings(form, section.dataset.workspace);
  }

  const create = document.getElementById("workspace-form");
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await api("POST", "/api/v1/workspaces", { name: new FormData(create).get("name") }); window.location.reload(); }
    catch (err) { const s = document.getElementById("workspace-status"); s.className = "form-status error"; s.textContent = err.message; }
  });
})();
