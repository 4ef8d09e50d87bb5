// Compare models: keep one transcript of the job, delete the others.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const { api } = window.Sotto;
  const root = document.getElementById("compare");
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button.keep");
    if (!button) return;
    if (!confirm(t("Keep this transcript and delete the other models' transcripts for good?"))) return;
    try {
      await api("POST", `/api/v1/jobs/${root.dataset.jobId}/keep`, { transcript_id: button.dataset.transcript });
      window.location.assign(`/t/${button.dataset.transcript}`);
    } catch (err) { document.getElementById("compare-status").textContent = err.message; }
  });
})();
