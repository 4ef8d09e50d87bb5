// Webhooks per workspace: list with the delivery log, add (the secret is shown once), test, remove.
(function () {
  "use strict";
  const { api } = window.Sotto;
  const { t } = window.SottoI18n;
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };

  function ask(dialog, setup) {
    return new Promise((resolve) => {
      setup();
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function deliveries(hook, box) {
    const log = await api("GET", `/api/v1/webhooks/${hook.id}/deliveries`);
    box.replaceChildren(...(log.length ? log.slice(0, 10).map((d) => el("li",
      `${d.created_at.slice(0, 19).replace("T", " ")} · ${d.event} · ${d.state}` + (d.attempts > 1 ? " " + t("after {n} tries", { n: d.attempts }) : "") +
      (d.last_error ? ` · ${d.last_error}` : ""), d.state === "failed" ? "error" : "")) : [el("li", t("Nothing sent yet."), "muted")]));
  }

  async function load(section) {
    const list = section.querySelector(".hook-list");
    try {
      const data = await api("GET", `/api/v1/workspaces/${section.dataset.workspace}/webhooks`);
      list.replaceChildren(...(data.webhooks.length ? data.webhooks.map((hook) => {
        const li = el("li", null, "hook");
        li.append(el("strong", hook.url), el("span", ` ${hook.events.join(", ")}${hook.include_text ? " · " + t("with text") : ""}`, "muted"));
        const test = el("button", t("Send a test")); test.type = "button";
        const remove = el("button", t("Remove…"), "danger"); remove.type = "button";
        const log = el("ul", null, "plain delivery-log");
        test.addEventListener("click", async () => { await api("POST", `/api/v1/webhooks/${hook.id}/test`); setTimeout(() => deliveries(hook, log), 1500); });
        remove.addEventListener("click", async () => {
          const dialog = document.getElementById("hook-delete");
          if (await ask(dialog, () => { document.getElementById("hook-delete-url").textContent = hook.url; })) {
            await api("DELETE", `/api/v1/webhooks/${hook.id}`); load(section);
          }
        });
        const row = el("div", null, "row"); row.append(test, remove);
        li.append(row, log);
        deliveries(hook, log);
        return li;
      }) : [el("li", t("No webhooks yet."), "muted")]));
    } catch (err) { list.replaceChildren(el("li", err.message, "error")); }
  }

  for (const section of document.querySelectorAll(".webhooks")) {
    load(section);
    const form = section.querySelector(".hook-form");
    if (!form) continue;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.querySelector(".form-status"), data = new FormData(form);
      try {
        const made = await api("POST", `/api/v1/workspaces/${section.dataset.workspace}/webhooks`, {
          url: data.get("url"), events: data.getAll("events"), include_text: !!data.get("include_text"),
        });
        status.textContent = ""; form.reset(); load(section);
        const dialog = document.getElementById("hook-secret");
        await ask(dialog, () => { document.getElementById("hook-secret-value").textContent = made.secret; });
      } catch (err) { status.textContent = err.message; }
    });
  }
})();
