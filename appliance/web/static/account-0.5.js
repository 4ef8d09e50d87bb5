// Account page: password change, API keys, sign out everywhere, delete the account.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const { api } = window.Sotto;
  const pw = document.getElementById("password-form");  // absent for a single sign-on account: no password here
  if (pw) pw.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(pw), status = pw.querySelector(".form-status");
    try {
      await api("POST", "/api/v1/me/password", { current_password: data.get("current_password"), new_password: data.get("new_password") });
      status.className = "form-status ok"; status.textContent = t("Password changed. Your other sessions were signed out."); pw.reset();
    } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
  });
  const keyForm = document.getElementById("key-form");
  keyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(keyForm), out = document.getElementById("new-key");
    const body = { name: data.get("name"), scope: data.get("scope"), store: data.get("store") === "on" };
    try {
      let key;
      try { key = await api("POST", "/api/v1/apikeys", body); } catch (err) {
        // Accounts with a second factor prove it again (if the last proof is not recent) before a new key.
        if (!(err.body && err.body.extra && err.body.extra.code === "second_factor_required")) throw err;
        if (!(await window.SottoFresh.ask())) throw new Error(t("The key was not created: the second factor was not confirmed."));
        key = await api("POST", "/api/v1/apikeys", body);
      }
      out.className = "ok";
      out.textContent = t("New key (shown only now, copy it): {key}", { key: key.key });
    } catch (err) { out.className = "error"; out.textContent = err.message; }
  });
  document.getElementById("keys").addEventListener("click", async (e) => {
    const b = e.target.closest(".revoke-key");
    if (!b || !confirm(t("Revoke this key? Programs using it stop working at once."))) return;
    try { await api("DELETE", `/api/v1/apikeys/${b.dataset.key}`); b.closest("tr").remove(); } catch (err) { alert(err.message); }
  });
  const invitations = document.getElementById("workspace-invitations");
  if (invitations) invitations.addEventListener("click", async (e) => {
    const b = e.target.closest(".answer-invitation");
    if (!b) return;
    const item = b.closest("li"), accept = b.dataset.accept === "true", status = document.getElementById("invitation-status");
    try {
      await api("POST", `/api/v1/me/workspace-invitations/${item.dataset.workspace}`, { accept });
      if (accept) { window.location.reload(); return; }
      item.remove(); status.className = "form-status ok"; status.textContent = t("Declined.");
    } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
  });
  // Deleting the account: a dialog that needs the password (Enter confirms, Esc cancels); the form only
  // closes when the server said yes, so a wrong password is said in place.
  const dialog = document.getElementById("delete-account-dialog"), form = document.getElementById("delete-account-form");
  document.getElementById("delete-account").addEventListener("click", () => { form.reset(); form.querySelector(".form-status").textContent = ""; dialog.showModal(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = form.querySelector(".form-status");
    status.textContent = t("Deleting…");
    try {
      await api("DELETE", "/api/v1/me", { password: new FormData(form).get("password") });
      window.location.assign("/login?deleted=1");
    } catch (err) { status.textContent = err.message; }
  });
  // The page language: saved with the account (and in the cookie the sign-in page reads), then shown.
  const languageForm = document.getElementById("language-form");
  languageForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = languageForm.querySelector(".form-status");
    try { await api("PUT", "/api/v1/me/language", { language: new FormData(languageForm).get("language") || null }); window.location.reload(); }
    catch (err) { status.className = "form-status error"; status.textContent = err.message; }
  });
  document.getElementById("logout-all").addEventListener("click", async () => {
    try { await api("POST", "/api/v1/auth/logout-all", {}); window.location.assign("/login"); } catch (err) { alert(err.message); }
  });
})();
