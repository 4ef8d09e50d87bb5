// Users (administrators): invite, add, disable or enable, reset a password (in a dialog: a password
// typed into window.prompt() is shown in clear and cannot be checked before it is sent).
(function () {
  "use strict";
  const { t } = window.SottoI18n;
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
  const resetDialog = document.getElementById("reset-dialog"), resetForm = document.getElementById("reset-form");
  let resetting = null;
  resetForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const reply = await api("POST", `/api/v1/users/${resetting}/password`, { password: new FormData(resetForm).get("password") });
      resetDialog.close("ok");
      status.className = "ok"; status.textContent = `${t("Password reset.")} ${reply.note}`;
    } catch (err) { resetForm.querySelector(".form-status").textContent = err.message; }
  });
  const deleteDialog = document.getElementById("delete-user-dialog"), deleteForm = document.getElementById("delete-user-form");
  let deleting = null;
  deleteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(deleteForm), transfer = data.get("transcripts") === "transfer";
    try {
      const out = await api("POST", `/api/v1/users/${deleting}/delete`, { transcripts: data.get("transcripts"), transfer_to: transfer ? data.get("transfer_to") : null });
      deleteDialog.close("ok");
      document.querySelector(`tr[data-user="${deleting}"]`).remove();
      status.className = "ok"; status.textContent = transfer ? t("Deleted. Transcripts given to the new owner: {n}.", { n: out.transcripts_transferred }) : t("Deleted.");
    } catch (err) { deleteForm.querySelector(".form-status").textContent = err.message; }
  });
  const inviteForm = document.getElementById("invite-form");
  inviteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(inviteForm), out = document.getElementById("invite-status");
    try {
      const invite = await api("POST", "/api/v1/invites", { email: data.get("email"), role: data.get("role"), language: data.get("language") });
      out.className = "ok"; out.textContent = t("Send this link to {email} (it works once, for {hours} hours):", { email: data.get("email"), hours: invite.expires_in_hours });
      document.getElementById("invite-link").textContent = window.location.origin + invite.path;
      // A message to send with it, in the invitee's language (marked so, for the browser's spelling and reading).
      const message = document.getElementById("invite-message");
      message.textContent = invite.message; message.lang = invite.language.replace("_", "-"); message.classList.remove("hidden");
      inviteForm.reset();
    } catch (err) {
      out.className = "error"; out.textContent = err.message;
      document.getElementById("invite-link").textContent = ""; document.getElementById("invite-message").classList.add("hidden");
    }
  });
  document.getElementById("users").addEventListener("click", async (e) => {
    const row = e.target.closest("tr[data-user]");
    if (!row) return;
    const id = row.dataset.user;
    try {
      if (e.target.closest(".user-toggle")) {
        await api("POST", `/api/v1/users/${id}/${e.target.dataset.action}`, {});
        window.location.reload();
      } else if (e.target.closest(".user-delete")) {
        deleting = id;
        deleteForm.reset(); deleteForm.querySelector(".form-status").textContent = "";
        document.getElementById("delete-user-who").textContent = row.cells[0].textContent;
        for (const option of deleteForm.querySelectorAll("select[name=transfer_to] option")) option.disabled = option.value === id;
        deleteDialog.showModal();
      } else if (e.target.closest(".user-reset")) {
        resetting = id;
        resetForm.reset(); resetForm.querySelector(".form-status").textContent = "";
        document.getElementById("reset-who").textContent = row.cells[0].textContent;
        resetDialog.showModal();
      }
    } catch (err) { status.className = "error"; status.textContent = err.message; }
  });
})();
