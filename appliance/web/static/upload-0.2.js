// New transcription: files (drop or pick, several at once) and microphone recordings are uploaded
// one XHR each (fetch has no upload progress), two at a time, then watched until done. The browser
// keeps each file in memory, so "Open the transcript" can play it without uploading it again.
(function () {
  "use strict";
  const { api } = window.Sotto;
  const { watchJob, render, describe } = window.SottoProgress;
  const app = document.getElementById("upload-app");
  const maxUpload = Number(app.dataset.maxUpload);
  const queueList = document.getElementById("queue");
  const rowTemplate = document.getElementById("file-row");
  const STORE = "sotto.uploads";  // job ids and names only (never audio), so a reload finds its jobs again
  const PARALLEL = 2;
  const items = [];
  let active = 0;

  function remembered() { try { return JSON.parse(sessionStorage.getItem(STORE) || "[]"); } catch (e) { return []; } }
  function remember(jobId, name) { const all = remembered().filter((r) => r.jobId !== jobId); all.push({ jobId, name }); sessionStorage.setItem(STORE, JSON.stringify(all.slice(-50))); }

  function options() {
    const form = document.getElementById("options");
    const data = new FormData(form);
    const fields = {};
    const model = data.get("model"), compare = data.get("compare");
    fields.model = compare && compare !== model ? `${model},${compare}` : model;
    if (data.get("language")) fields.language = data.get("language");
    if (data.get("translate")) fields.task = "translate";
    if (data.get("diarize")) {
      fields.diarize = "true";
      if (data.get("num_speakers")) fields.num_speakers = data.get("num_speakers");
    }
    if ((data.get("hotwords") || "").trim()) fields.hotwords = data.get("hotwords").trim();
    if (data.get("workspace_id")) fields.workspace_id = data.get("workspace_id");
    if (data.get("private")) fields.private = "true";
    return fields;
  }

  // Private: only when this account has keys to seal to and the browser can open the result (HTTPS).
  (function privateOption() {
    const box = document.querySelector("input[name=private]"), why = document.getElementById("private-why");
    if (!window.isSecureContext || !(window.crypto && window.crypto.subtle)) {
      box.disabled = true;
      why.textContent = "Private transcripts need HTTPS: open this page over https:// to use them.";
    } else {
      box.disabled = box.dataset.enrolled !== "true";
    }
  })();

  function addRow(name) {
    const li = rowTemplate.content.firstElementChild.cloneNode(true);
    li.querySelector(".f-name").textContent = name;
    queueList.appendChild(li);
    document.getElementById("queue-empty").classList.add("hidden");
    return li;
  }

  function setState(item, text) { item.li.querySelector(".f-state").textContent = text; }
  function setError(item, text) { item.li.querySelector(".f-error").textContent = text || ""; }

  function enqueue(file) {
    const item = { file, li: addRow(file.name), xhr: null, jobId: null, stop: null };
    items.push(item);
    wire(item);
    if (file.size > maxUpload) {
      setState(item, "Too large"); setError(item, `This file is ${(file.size / 1048576).toFixed(0)} MB; the limit is ${(maxUpload / 1048576).toFixed(0)} MB.`);
      item.li.querySelector(".f-cancel").classList.add("hidden");
      return;
    }
    item.waiting = true;
    setState(item, "Waiting to upload");
    pump();
  }

  function pump() {
    while (active < PARALLEL) {
      const next = items.find((i) => i.waiting);
      if (!next) return;
      next.waiting = false;
      upload(next);
    }
  }

  function upload(item) {
    active += 1;
    const fields = options();
    item.private = fields.private === "true";
    const body = new FormData();
    for (const [k, v] of Object.entries(fields)) if (k !== "workspace_id") body.append(k, v);
    body.append("file", item.file, item.file.name);
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    const bar = item.li.querySelector(".f-progress");
    xhr.open("POST", "/api/v1/transcriptions" + (fields.workspace_id ? `?workspace_id=${encodeURIComponent(fields.workspace_id)}` : ""));
    xhr.setRequestHeader("X-CSRF-Token", window.Sotto.csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); setState(item, `Uploading ${bar.value}%`); } };
    const done = () => { active -= 1; item.xhr = null; pump(); };
    xhr.onload = () => {
      done();
      let reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: shown below */ }
      if (xhr.status >= 200 && xhr.status < 300) { started(item, reply); return; }
      failed(item, reply.detail || `The appliance answered ${xhr.status}.`);
    };
    xhr.onerror = () => { done(); failed(item, "The upload was interrupted. Check the connection and retry."); };
    xhr.onabort = () => { done(); setState(item, "Cancelled"); item.li.querySelector(".f-retry").classList.remove("hidden"); };
    setState(item, "Uploading 0%");
    xhr.send(body);
  }

  function failed(item, message) {
    setState(item, "Failed"); setError(item, message);
    item.li.querySelector(".f-retry").classList.toggle("hidden", !item.file);
  }

  function started(item, job) {
    item.jobId = job.id;
    remember(job.id, item.file ? item.file.name : job.filename);
    follow(item);
  }

  function follow(item) {
    item.li.querySelector(".f-stages").classList.remove("hidden");
    item.li.querySelector(".f-cancel").classList.remove("hidden");
    item.stop = watchJob(item.jobId, (job) => {
      render(item.li, job);
      setState(item, describe(job));
      setError(item, job.error);
      if (job.state !== "queued" && job.state !== "running") item.li.querySelector(".f-cancel").classList.add("hidden");
      if (job.transcript_id) {
        const open = item.li.querySelector(".f-open");
        open.href = `/t/${job.transcript_id}`; open.dataset.transcript = job.transcript_id; open.classList.remove("hidden");
      }
      if ((job.transcript_ids || []).length > 1) {
        const cmp = item.li.querySelector(".f-compare");
        cmp.href = `/compare/${job.id}`; cmp.classList.remove("hidden");
      }
    }, (ok) => { if (!ok) setState(item, "Reconnecting…"); });
  }

  function wire(item) {
    item.li.querySelector(".f-cancel").addEventListener("click", async () => {
      if (item.waiting) { item.waiting = false; setState(item, "Cancelled"); return; }
      if (item.xhr) { item.xhr.abort(); return; }
      if (item.jobId) { try { await api("DELETE", `/api/v1/jobs/${item.jobId}`); } catch (err) { setError(item, err.message); } }
    });
    item.li.querySelector(".f-retry").addEventListener("click", () => {
      item.li.querySelector(".f-retry").classList.add("hidden"); setError(item, "");
      item.waiting = true; setState(item, "Waiting to upload"); pump();
    });
    item.li.querySelector(".f-open").addEventListener("click", (event) => {
      // A new tab has no audio to hand over; a private transcript's page unlocks and decrypts on its own.
      if (!item.file || item.private || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      openInPlace(event.currentTarget.getAttribute("href"), item.file);
    });
  }

  // Show the transcript page in this document, handing it the file still held in memory (a normal
  // navigation would drop it). Back or reload gives the ordinary page, where the file can be picked again.
  async function openInPlace(href, file) {
    try {
      const response = await fetch(href, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      document.title = page.title;
      document.getElementById("main").replaceWith(document.adoptNode(page.getElementById("main")));
      history.pushState({ inPlace: true }, "", href);
      window.addEventListener("popstate", () => window.location.reload(), { once: true });
      window.__sottoManualMount = true;
      const editor = await import("/static/editor-0.2.js");
      editor.mount({ file });
      window.scrollTo(0, 0);
    } catch (err) { window.location.assign(href); }
  }

  // Files: picker and drag-and-drop.
  const input = document.getElementById("file-input");
  input.addEventListener("change", () => { Array.from(input.files).forEach(enqueue); input.value = ""; });
  const zone = document.getElementById("dropzone");
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("is-over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("is-over"); }));
  zone.addEventListener("drop", (e) => Array.from(e.dataTransfer.files).forEach(enqueue));

  // Microphone.
  const startBtn = document.getElementById("rec-start"), stopBtn = document.getElementById("rec-stop");
  const timer = document.getElementById("rec-timer"), level = document.getElementById("rec-level");
  const why = document.getElementById("rec-unavailable");
  let recorder = null, recStart = 0, tick = null, audioCtx = null, stream = null;
  if (!window.isSecureContext || !navigator.mediaDevices || !window.MediaRecorder) {
    startBtn.disabled = true; why.classList.remove("hidden");
    why.textContent = "Recording needs HTTPS (browsers allow the microphone only on secure pages). Open the appliance at its https:// address.";
  }
  const mime = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"].find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || "";
  startBtn.addEventListener("click", async () => {
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
    catch (err) { why.textContent = `The microphone is not available: ${err.message}`; why.classList.remove("hidden"); return; }
    const chunks = [];
    recorder = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      if (audioCtx) audioCtx.close();
      clearInterval(tick);
      level.value = 0;
      const type = recorder.mimeType || mime || "audio/webm";
      const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
      const stamp = new Date().toISOString().slice(0, 16).replace("T", " ").replace(":", "-");
      enqueue(new File(chunks, `Recording ${stamp}.${ext}`, { type }));
      recorder = null;
    };
    audioCtx = new AudioContext();
    const analyser = audioCtx.createAnalyser();
    analyser.fftSize = 1024;
    audioCtx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    recorder.start(1000);
    recStart = performance.now();
    tick = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0; for (const v of samples) sum += v * v;
      level.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      timer.textContent = window.Sotto.clock(performance.now() - recStart);
    }, 100);
    startBtn.disabled = true; stopBtn.disabled = false;
  });
  stopBtn.addEventListener("click", () => { if (recorder) recorder.stop(); startBtn.disabled = false; stopBtn.disabled = true; });

  // Leaving while recording or uploading loses that work: ask first.
  window.addEventListener("beforeunload", (e) => { if (recorder || active > 0) { e.preventDefault(); e.returnValue = ""; } });

  // After a reload: the jobs this tab started, still watched (their audio is gone from this page).
  for (const r of remembered()) {
    const item = { file: null, li: addRow(r.name), xhr: null, jobId: r.jobId, stop: null };
    items.push(item); wire(item); item.li.querySelector(".f-progress").value = 100; follow(item);
  }
})();
