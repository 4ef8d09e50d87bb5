// The invitation page: the token is in the link's fragment (never sent to a server log), the password is
// chosen here, and the account is made by the public accept endpoint.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const form = document.getElementById("invite-form"), status = document.getElementById("invite-status");
  const token = decodeURIComponent(window.location.hash.slice(1));
  if (!token) { form.classList.add("hidden"); document.getElementById("invite-missing").classList.remove("hidden"); return; }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    if (data.get("password") !== data.get("again")) { status.textContent = t("The two passwords differ."); return; }
    status.textContent = "";
    const response = await fetch("/api/v1/invites/accept", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ token, password: data.get("password") }),
    });
    if (response.ok) { history.replaceState(null, "", "/invite"); window.location.assign("/login?joined=1"); return; }
    let detail = t("The appliance answered {status}.", { status: response.status });
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    status.textContent = detail;
  });
})();
