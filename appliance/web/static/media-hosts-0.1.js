// The media hosts (administrators): links to recordings on these hosts can be imported. Add with Enter;
// removing asks first (Enter confirms, Esc cancels).
(function () {
  "use strict";
  const { api } = window.Sotto;
  const { t } = window.SottoI18n;
  const section = document.querySelector(".media-hosts");
  if (!section) return;
  const list = section.querySelector(".media-host-list"), form = section.querySelector(".media-host-form");
  const status = form.querySelector(".form-status");
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };

  function confirmRemoval(name) {
    const dialog = document.getElementById("media-host-delete");
    document.getElementById("media-host-delete-name").textContent = name;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function load(focusName) {
    try {
      const hosts = await api("GET", "/api/v1/media-hosts");
      list.replaceChildren(...(hosts.length ? hosts.map((host) => {
        const li = el("li", null, "row media-host");
        const remove = el("button", t("Remove…"), "danger");
        remove.type = "button";
        remove.setAttribute("aria-label", t("Remove {name}", { name: host.name }));
        remove.addEventListener("click", async () => {
          if (!(await confirmRemoval(host.name))) { remove.focus(); return; }
          try { await api("DELETE", `/api/v1/media-hosts/${encodeURIComponent(host.name)}`); status.textContent = ""; }
          catch (err) { status.textContent = err.message; }
          await load();
          form.elements.name.focus();
        });
        li.append(el("code", host.name), remove);
        if (host.name === focusName) li.dataset.added = "true";
        return li;
      }) : [el("li", t("No media hosts yet: links cannot be imported."), "muted")]));
    } catch (err) { list.replaceChildren(el("li", err.message, "error")); }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const host = await api("POST", "/api/v1/media-hosts", { name: form.elements.name.value });
      status.textContent = t("Added {name}.", { name: host.name });
      form.reset();
      await load(host.name);
    } catch (err) { status.textContent = err.message; form.elements.name.focus(); }
  });
  load();
})();
