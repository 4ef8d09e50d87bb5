// Cluster mode (administrators, the Models page): drain a worker node for maintenance, or give it work
// again. Neither loses anything (a drained node's running jobs finish), so no confirmation is asked; the
// page then shows the nodes as the server sees them.
(function () {
  "use strict";
  const { api } = window.Sotto;
  const section = document.querySelector(".cluster-nodes");
  if (!section) return;
  const status = section.querySelector(".form-status");
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-drain]");
    if (!button) return;
    button.disabled = true;
    try {
      await api("POST", `/api/v1/admin/cluster/nodes/${encodeURIComponent(button.dataset.node)}/drain`, {
        drained: button.dataset.drain === "true",
      });
      window.location.hash = "nodes-heading";
      window.location.reload();
    } catch (err) {
      status.textContent = err.message;
      button.disabled = false;
      button.focus();
    }
  });
  // The states, replicas and GPU memory change on their own: the table is read again every 10 seconds
  // while nobody is acting on it.
  window.setInterval(async () => {
    if (section.contains(document.activeElement) && document.activeElement.tagName === "BUTTON") return;
    try {
      const response = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector(".cluster-nodes");
      if (fresh) section.replaceChildren(...fresh.childNodes);
    } catch (err) { /* the next round tries again */ }
  }, 10000);
})();
