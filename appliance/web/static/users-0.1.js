// Users (administrators): add, disable or enable, reset a password.
(function () {
  "use strict";
  const { api } = window.Sotto;
  const status = document.getElementById("user-status");
  const form = document.getElementById("user-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    try {
      await api("POST", "/api/v1/users", { email: data.get("email"), role: data.get("role"), password: data.get("password") });
      window.location.reload();
    } catch (err) { status.className = "error"; status.textContent = err.message; }
  });
  document.getElementById("users").addEventListener("click", async (e) => {
    const row = e.target.closest("tr[data-user]");
    if (!row) return;
    const id = row.dataset.user;
    try {
      if (e.target.closest(".user-toggle")) {
        await api("POST", `/api/v1/users/${id}/${e.target.dataset.action}`, {});
        window.location.reload();
      } else if (e.target.closest(".user-reset")) {
        const password = prompt("New password for this user (at least 12 characters). Their private transcripts keep their own passphrase.");
        if (!password) return;
        const reply = await api("POST", `/api/v1/users/${id}/password`, { password });
        status.className = "ok"; status.textContent = `Password reset. ${reply.note}`;
      }
    } catch (err) { status.className = "error"; status.textContent = err.message; }
  });
})();
