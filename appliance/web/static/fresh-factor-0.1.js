// "Confirm your second factor": a dialog (_fresh_factor.html) that proves it again with a code or a
// passkey, for changes that need a recent proof (creating an API key, adding a factor). Resolves true
// when proved, false when cancelled.
(function () {
  "use strict";
  const { api } = window.Sotto;
  const dialog = document.getElementById("fresh-factor-dialog");
  if (!dialog) return;
  const form = document.getElementById("fresh-factor-form"), status = form.querySelector(".form-status");
  let settle = null;
  function ask() {
    form.reset(); status.textContent = ""; dialog.returnValue = "";  // Esc keeps the last value: clear it
    dialog.showModal();
    return new Promise((resolve) => { settle = resolve; });
  }
  dialog.addEventListener("close", () => { if (settle) { settle(dialog.returnValue === "ok"); settle = null; } });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await api("POST", "/api/v1/me/second-factor/verify", { code: new FormData(form).get("code") }); dialog.close("ok"); }
    catch (err) { status.textContent = err.message; }
  });
  document.getElementById("fresh-passkey").addEventListener("click", async () => {
    try {
      const options = await api("POST", "/api/v1/me/second-factor/passkey-options");
      const credential = await window.SottoPasskeys.get(options).catch((err) => { throw new Error(window.SottoPasskeys.explain(err)); });
      await api("POST", "/api/v1/me/second-factor/verify", { credential });
      dialog.close("ok");
    } catch (err) { status.textContent = err.message; }
  });
  window.SottoFresh = { ask };
})();
