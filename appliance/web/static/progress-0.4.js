// One job's live progress over server-sent events, rendered into a stages list, a bar and a status line.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const ORDER = ["queued", "decoding", "transcribing", "diarizing", "done"];
  const TERMINAL = ["done", "failed", "cancelled"];
  const TICK_MS = 1000;

  function timeLeft(seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    if (seconds < 5) return t("almost done");
    if (seconds < 60) return t("about {seconds} s left", { seconds: Math.round(seconds) });
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return t("about {minutes} min left", { minutes });
    return t("about {hours} h {minutes} min left", { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
  }

  function describe(job) {
    if (job.state === "done") return t("Done");
    if (job.state === "failed") return t("Failed");
    if (job.state === "cancelled") return t("Cancelled");
    if (job.state === "queued") return t("Waiting in the queue…");
    const stage = { decoding: t("Converting"), transcribing: t("Transcribing"), diarizing: t("Identifying speakers") }[job.stage] || t("Working");
    const left = timeLeft(job.eta_seconds);
    const done = t("{stage} {percent}%", { stage, percent: Math.round(job.progress * 100) });
    return left ? t("{progress}, {left}", { progress: done, left }) : done;
  }

  function render(root, job) {
    const now = job.state === "done" ? "done" : job.state === "queued" ? "queued" : job.stage;
    const at = ORDER.indexOf(now);
    root.querySelectorAll("[data-stage]").forEach((li) => {
      const i = ORDER.indexOf(li.dataset.stage);
      // A job without speaker identification never has that stage: it is not listed as done.
      if (li.dataset.stage === "diarizing") li.classList.toggle("hidden", Boolean(job.options) && job.options.diarize === false);
      li.classList.toggle("is-done", i < at || job.state === "done");
      li.classList.toggle("is-now", i === at && job.state !== "done");
    });
    const bar = root.querySelector("progress");
    if (bar) {
      bar.value = job.state === "done" ? 100 : Math.round(job.progress * 100);
      // A bar says how far something has got; a job that ended without a transcript got nowhere.
      bar.classList.toggle("hidden", job.state === "failed" || job.state === "cancelled");
    }
  }

  // The server's estimate as of its last report, counted down until the next one: reports arrive
  // only when the recogniser hands out text, minutes apart for a long recording on a slow machine.
  function countedDown(job, receivedAt) {
    if (job.state !== "running" || job.eta_seconds == null) return job;
    return { ...job, eta_seconds: Math.max(0, job.eta_seconds - (Date.now() - receivedAt) / 1000) };
  }

  // Calls onUpdate(job) for every change until the job ends; returns a function that stops watching.
  function watchJob(jobId, onUpdate, onConnection) {
    let source = null, stopped = false, connected = false, last = null, receivedAt = 0;
    const timer = setInterval(() => {
      if (connected && !stopped && last && last.state === "running" && last.eta_seconds != null) onUpdate(countedDown(last, receivedAt));
    }, TICK_MS);
    const open = () => {
      source = new EventSource(`/api/v1/jobs/${jobId}/events`);
      const handle = (event) => {
        const job = JSON.parse(event.data);
        last = job; receivedAt = Date.now(); connected = true;
        if (onConnection) onConnection(true);
        onUpdate(job);
        if (TERMINAL.includes(job.state)) stop();
      };
      for (const name of ["progress", ...TERMINAL]) source.addEventListener(name, handle);
      source.addEventListener("gone", () => { onUpdate({ id: jobId, state: "failed", error: t("This job was deleted.") }); stop(); });
      source.onerror = () => { connected = false; if (!stopped && onConnection) onConnection(false); };  // EventSource retries by itself
    };
    const stop = () => { stopped = true; clearInterval(timer); if (source) source.close(); };
    open();
    return stop;
  }

  window.SottoProgress = { watchJob, render, describe, timeLeft, countedDown, TERMINAL };
})();
