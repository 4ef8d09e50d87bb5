// One job's live progress over server-sent events, rendered into a stages list, a bar and a status line.
(function () {
  "use strict";
  const ORDER = ["queued", "decoding", "transcribing", "diarizing", "done"];
  const TERMINAL = ["done", "failed", "cancelled"];

  function eta(seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
    return `about ${Math.round(seconds / 60)} min left`;
  }

  function describe(job) {
    if (job.state === "done") return "Done";
    if (job.state === "failed") return "Failed";
    if (job.state === "cancelled") return "Cancelled";
    if (job.state === "queued") return "Waiting in the queue…";
    const stage = { decoding: "Converting", transcribing: "Transcribing", diarizing: "Identifying speakers" }[job.stage] || "Working";
    const left = eta(job.eta_seconds);
    return `${stage} ${Math.round(job.progress * 100)}%${left ? ", " + left : ""}`;
  }

  function render(root, job) {
    const now = job.state === "done" ? "done" : job.state === "queued" ? "queued" : job.stage;
    const at = ORDER.indexOf(now);
    root.querySelectorAll("[data-stage]").forEach((li) => {
      const i = ORDER.indexOf(li.dataset.stage);
      li.classList.toggle("is-done", i < at || job.state === "done");
      li.classList.toggle("is-now", i === at && job.state !== "done");
    });
    const bar = root.querySelector("progress");
    if (bar) bar.value = job.state === "done" ? 100 : Math.round(job.progress * 100);
  }

  // Calls onUpdate(job) for every change until the job ends; returns a function that stops watching.
  function watchJob(jobId, onUpdate, onConnection) {
    let source = null, stopped = false;
    const open = () => {
      source = new EventSource(`/api/v1/jobs/${jobId}/events`);
      const handle = (event) => {
        const job = JSON.parse(event.data);
        if (onConnection) onConnection(true);
        onUpdate(job);
        if (TERMINAL.includes(job.state)) stop();
      };
      for (const name of ["progress", ...TERMINAL]) source.addEventListener(name, handle);
      source.addEventListener("gone", () => { onUpdate({ id: jobId, state: "failed", error: "This job was deleted." }); stop(); });
      source.onerror = () => { if (!stopped && onConnection) onConnection(false); };  // EventSource retries by itself
    };
    const stop = () => { stopped = true; if (source) source.close(); };
    open();
    return stop;
  }

  window.SottoProgress = { watchJob, render, describe, TERMINAL };
})();
