// The job page: live progress, cancel, and the way to the transcript when it is done.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const { api } = window.Sotto;
  const { watchJob, render, describe } = window.SottoProgress;
  const root = document.querySelector(".job");
  const status = root.querySelector(".job-status"), error = root.querySelector(".job-error");
  const cancel = root.querySelector(".job-cancel"), open = root.querySelector(".job-open"), compare = root.querySelector(".job-compare");
  const update = (job) => {
    render(root, job);
    status.textContent = describe(job);
    error.textContent = job.error || "";
    cancel.disabled = !["queued", "running"].includes(job.state);
    if (job.transcript_id) { open.href = `/t/${job.transcript_id}`; open.classList.remove("hidden"); }
    if ((job.transcript_ids || []).length > 1) compare.classList.remove("hidden");
  };
  watchJob(root.dataset.jobId, update, (ok) => { if (!ok) status.textContent = t("Reconnecting…"); });
  cancel.addEventListener("click", async () => {
    try { update(await api("DELETE", `/api/v1/jobs/${root.dataset.jobId}`)); } catch (err) { error.textContent = err.message; }
  });
})();
