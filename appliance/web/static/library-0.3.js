// Library: select rows, then export or delete them together; live state of jobs in progress.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  // As the server's state_name (appliance/web/i18n.py): the stored English state shown in the page's language.
  const STATES = { queued: t("queued"), running: t("running"), done: t("done"), failed: t("failed"), cancelled: t("cancelled"),
    decoding: t("converting"), transcribing: t("transcribing"), diarizing: t("identifying speakers") };
  const stateName = (value) => STATES[value] || value;
  const percent = new Intl.NumberFormat(window.SottoI18n.lang, { style: "percent" });
  const { api, download } = window.Sotto;
  const form = document.getElementById("library-form");
  if (form) {
    const boxes = () => Array.from(form.querySelectorAll('input[name="id"]'));
    const chosen = () => boxes().filter((b) => b.checked).map((b) => b.value);
    const status = document.getElementById("bulk-status");
    const refresh = () => {
      const n = chosen().length;
      document.getElementById("selected-count").textContent = t("{n} selected", { n: window.SottoI18n.number(n) });
      for (const id of ["bulk-export", "bulk-delete"]) { const b = document.getElementById(id); if (b) b.disabled = n === 0; }
    };
    form.addEventListener("change", (event) => {
      if (event.target.id === "select-all") boxes().forEach((b) => { b.checked = event.target.checked; });
      refresh();
    });
    document.getElementById("bulk-export").addEventListener("click", async () => {
      const format = document.getElementById("bulk-format").value;
      status.textContent = t("Preparing the export…");
      try { download(await api("POST", "/api/v1/transcripts/export", { ids: chosen(), formats: [format] }, { blob: true }), "transcripts.zip"); status.textContent = ""; }
      catch (err) { status.textContent = err.message; }
    });
    const del = document.getElementById("bulk-delete");
    if (del) del.addEventListener("click", async () => {
      const ids = chosen();
      if (!confirm(t("Delete {n} transcripts for good? This cannot be undone.", { n: window.SottoI18n.number(ids.length) }))) return;
      try { await api("POST", "/api/v1/transcripts/delete", { ids }); window.location.reload(); }
      catch (err) { status.textContent = err.message; }
    });
    refresh();
  }
  // Jobs in progress: poll their state (one request per few seconds, not one stream per job: browsers
  // allow only six connections per host without HTTP/2).
  const running = Array.from(document.querySelectorAll("#running li[data-job]"));
  if (running.length) {
    const tick = async () => {
      let finished = false;
      for (const li of running) {
        try {
          const job = await api("GET", `/api/v1/jobs/${li.dataset.job}`);
          const stage = job.stage && job.state === "running" ? t("{state}: {stage}", { state: stateName(job.state), stage: stateName(job.stage) }) : stateName(job.state);
          li.querySelector("[data-job-state]").textContent = t("{state} {percent}", { state: stage, percent: percent.format(job.progress) });
          if (!["queued", "running"].includes(job.state)) finished = true;
        } catch (err) { /* the next tick retries */ }
      }
      if (finished) { window.location.reload(); } else { setTimeout(tick, 3000); }
    };
    setTimeout(tick, 2000);
  }
})();
