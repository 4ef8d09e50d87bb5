// Shared by every signed-in page: JSON calls with the session's CSRF token, and small helpers.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || t("The appliance answered {status}.", { status }));
      this.status = status; this.body = body || {};
    }
  }

  async function api(method, url, body, options) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf }, keepalive: !!(options && options.keepalive) };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let response;
    try { response = await fetch(url, init); } catch (err) { throw new ApiError(0, { detail: t("The appliance cannot be reached. Check the connection.") }); }
    if (response.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search)); }
    const type = response.headers.get("content-type") || "";
    if (!response.ok) { throw new ApiError(response.status, type.includes("json") ? await response.json() : { detail: await response.text() }); }
    if (options && options.blob) { return response.blob(); }
    return type.includes("json") ? response.json() : response.text();
  }

  function clock(ms) {
    const total = Math.floor(ms / 1000), h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
  }

  function download(blob, name) {
    const url = URL.createObjectURL(blob), a = document.createElement("a");
    a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // <form data-api-form action=... method=post data-then=/next>: posted as JSON with the CSRF token.
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-api-form]");
    if (!form) return;
    event.preventDefault();
    // A single sign-on session's sign-out answers with the provider's end-session URL: go there too.
    try { const out = await api("POST", form.getAttribute("action"), {}); window.location.assign((out && out.end_session_url) || form.dataset.then || "/"); }
    catch (err) { alert(err.message); }
  });

  // Dialogs: Enter submits the form, and so must mean OK, so Cancel is never a submit button (it would be
  // the form's first, the one Enter presses); it closes the dialog like Esc does.
  document.addEventListener("click", (event) => {
    const cancel = event.target.closest("dialog .dialog-cancel");
    if (cancel) cancel.closest("dialog").close("cancel");
  });

  window.Sotto = { api, ApiError, clock, download, csrf };
})();
