// Directory page (administrators): check every directory account against the directory now.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const button = document.getElementById("sync-now");
  if (!button) return;
  const status = document.getElementById("sync-status");
  button.addEventListener("click", async () => {
    button.disabled = true; status.className = "form-status"; status.textContent = t("Checking…");
    try {
      const out = await window.Sotto.api("POST", "/api/v1/directory/sync", {});
      status.className = out.error ? "form-status error" : "form-status ok";
      status.textContent = out.error ? t("The directory could not be checked: {error}", { error: out.error }) : t("{checked} checked, {disabled} disabled.", { checked: window.SottoI18n.number(out.checked), disabled: window.SottoI18n.number(out.disabled) });
    } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
    button.disabled = false;
  });
})();
