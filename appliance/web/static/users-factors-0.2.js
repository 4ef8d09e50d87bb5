// Users page, second factors: which roles must have one, and resetting a user's factors (in a dialog;
// Enter confirms, Esc cancels).
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const { api } = window.Sotto;
  const roleName = (role) => ({ admin: t("admin"), member: t("member"), viewer: t("viewer") })[role] || role;
  const policy = document.getElementById("factor-policy-form"), status = document.getElementById("factor-policy-status");
  policy.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const out = await api("PUT", "/api/v1/second-factor-policy", { roles: new FormData(policy).getAll("roles") });
      status.className = "form-status ok";
      status.textContent = out.roles.length ? t("Required for: {roles}.", { roles: out.roles.map(roleName).join(", ") }) : t("Not required for any role.");
    } catch (err) { status.className = "form-status error"; status.textContent = err.message; }
  });
  const dialog = document.getElementById("factors-reset-dialog"), form = document.getElementById("factors-reset-form");
  let row = null;
  document.getElementById("users").addEventListener("click", (e) => {
    const button = e.target.closest(".user-factors-reset");
    if (!button) return;
    row = button.closest("tr");
    document.getElementById("factors-reset-who").textContent = row.cells[0].textContent;
    form.querySelector(".form-status").textContent = "";
    dialog.showModal();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("POST", `/api/v1/users/${row.dataset.user}/second-factors/reset`, {});
      dialog.close("ok");
      row.querySelector(".user-factors-reset").remove();
      row.cells[3].textContent = t("no");
    } catch (err) { form.querySelector(".form-status").textContent = err.message; }
  });
})();
