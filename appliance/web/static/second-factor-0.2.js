// Second factor page: set up or remove the authenticator app, recovery codes, passkeys (add, rename,
// remove). Dialogs: Enter confirms, Esc or Cancel closes them.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const { api } = window.Sotto;
  const $ = (id) => document.getElementById(id);
  const say = (el, text, ok) => { el.className = "form-status " + (ok ? "ok" : "error"); el.textContent = text; };

  function showCodes(codes) {
    if (!codes || !codes.length) return false;
    const list = $("recovery-codes");
    list.replaceChildren(...codes.map((c) => { const li = document.createElement("li"); const code = document.createElement("code"); code.textContent = c; li.append(code); return li; }));
    $("recovery-codes-card").classList.remove("hidden");
    $("recovery-codes-card").focus();
    return true;
  }

  // Asks for a code (or a passkey) when the server says the second factor must be proved again.
  async function withFreshFactor(action) {
    try { return await action(); } catch (err) {
      if (!(err.body && err.body.extra && err.body.extra.code === "second_factor_required")) throw err;
    }
    const ok = await window.SottoFresh.ask();
    if (!ok) throw new Error(t("Not confirmed."));
    return action();
  }

  const start = $("start-totp");
  if (start) start.addEventListener("click", async () => {
    try {
      const enrolment = await withFreshFactor(() => api("POST", "/api/v1/me/totp"));
      $("totp-qr").src = enrolment.qr_data_uri;
      $("totp-secret").textContent = enrolment.secret.replace(/(.{4})/g, "$1 ").trim();
      $("totp-confirm-form").classList.remove("hidden");
      start.classList.add("hidden");
      $("totp-confirm-form").querySelector("input").focus();
    } catch (err) { say($("totp-status"), err.message); }
  });
  const confirmForm = $("totp-confirm-form");
  if (confirmForm) confirmForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const result = await api("POST", "/api/v1/me/totp/confirm", { code: new FormData(confirmForm).get("code") });
      confirmForm.classList.add("hidden");
      say($("totp-status"), t("The authenticator app is set up."), true);
      showCodes(result.recovery_codes);
    } catch (err) { say($("totp-status"), err.message); }
  });

  // Removing the app and renewing the recovery codes both need the password and a current code.
  const pcDialog = $("password-code-dialog"), pcForm = $("password-code-form");
  let pcAction = null;
  function askPasswordAndCode(title, button, action) {
    pcForm.reset(); pcForm.querySelector(".form-status").textContent = "";
    $("password-code-title").textContent = title; $("password-code-ok").textContent = button;
    pcAction = action; pcDialog.showModal();
  }
  pcForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(pcForm);
    try { await pcAction({ password: data.get("password"), code: data.get("code") }); pcDialog.close("ok"); }
    catch (err) { pcForm.querySelector(".form-status").textContent = err.message; }
  });
  const remove = $("remove-totp");
  if (remove) remove.addEventListener("click", () => askPasswordAndCode(t("Remove the authenticator app?"), t("Remove"), async (body) => {
    await api("POST", "/api/v1/me/totp/remove", body);
    window.location.reload();
  }));
  const renew = $("new-recovery-codes");
  if (renew) renew.addEventListener("click", () => askPasswordAndCode(t("New recovery codes? The old ones stop working."), t("Make new codes"), async (body) => {
    const result = await api("POST", "/api/v1/me/recovery-codes", body);
    $("recovery-left").textContent = String(result.recovery_codes.length);
    showCodes(result.recovery_codes);
  }));

  // Passkeys.
  const pkForm = $("passkey-form"), pkStatus = $("passkey-status");
  if (pkForm) pkForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!window.SottoPasskeys.supported()) { say(pkStatus, t("This browser cannot use passkeys.")); return; }
    try {
      const options = await withFreshFactor(() => api("POST", "/api/v1/me/passkeys/options"));
      say(pkStatus, t("Follow your browser's prompt…"), true);
      const credential = await window.SottoPasskeys.create(options).catch((err) => { throw new Error(window.SottoPasskeys.explain(err)); });
      const result = await api("POST", "/api/v1/me/passkeys", { name: new FormData(pkForm).get("name"), credential });
      if (!showCodes(result.recovery_codes)) { window.location.reload(); return; }
      say(pkStatus, t("Passkey \"{name}\" added.", { name: result.name }), true);
    } catch (err) { say(pkStatus, err.message); }
  });
  const table = $("passkeys");
  const rmDialog = $("passkey-remove-dialog"), rmForm = $("passkey-remove-form");
  const rnDialog = $("passkey-rename-dialog"), rnForm = $("passkey-rename-form");
  let chosen = null;
  if (table) table.addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-passkey]");
    if (!row) return;
    chosen = row;
    if (e.target.closest(".remove-passkey")) { rmForm.reset(); rmForm.querySelector(".form-status").textContent = ""; rmDialog.showModal(); }
    if (e.target.closest(".rename-passkey")) {
      rnForm.reset(); rnForm.querySelector(".form-status").textContent = "";
      rnForm.elements.name.value = row.querySelector(".passkey-name").textContent; rnDialog.showModal();
    }
  });
  rmForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("DELETE", `/api/v1/me/passkeys/${encodeURIComponent(chosen.dataset.passkey)}`, { password: new FormData(rmForm).get("password") });
      rmDialog.close("ok"); window.location.reload();
    } catch (err) { rmForm.querySelector(".form-status").textContent = err.message; }
  });
  rnForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const result = await api("PUT", `/api/v1/me/passkeys/${encodeURIComponent(chosen.dataset.passkey)}`, { name: new FormData(rnForm).get("name") });
      chosen.querySelector(".passkey-name").textContent = result.name; rnDialog.close("ok");
    } catch (err) { rnForm.querySelector(".form-status").textContent = err.message; }
  });
})();
