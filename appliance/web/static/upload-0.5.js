// New transcription: recordings are chosen first (picked, dropped or recorded) and wait in a list where
// they can be removed, while the options are reviewed; nothing is uploaded until Transcribe, which reads
// the options at that moment. Then each file is uploaded by its own XHR (fetch has no upload progress),
// two at a time, and watched until done. The browser keeps each file in memory, so "Open the
// transcript" can play it without uploading it again. A link (a recording, or a page with one, on a media
// host an administrator listed) waits in the same list, takes the same options and shows the same
// progress; the appliance fetches it itself, so there is no upload bar.
(function () {
  "use strict";
  const { api } = window.Sotto;
  const { t, filesize } = window.SottoI18n;
  const { watchJob, render, describe } = window.SottoProgress;
  const form = document.getElementById("upload-app");
  const maxUpload = Number(form.dataset.maxUpload);
  const queueSection = document.getElementById("queue-section"), queueList = document.getElementById("queue");
  const rowTemplate = document.getElementById("file-row"), pendingTemplate = document.getElementById("pending-row");
  const pendingList = document.getElementById("pending"), hint = document.getElementById("start-hint");
  const input = document.getElementById("file-input");
  const STORE = "sotto.uploads";  // job ids and names only (never audio), so a reload finds its jobs again
  const PARALLEL = 2;
  const items = [];  // started: uploading, watched or ended
  const pending = [];  // chosen, not started
  let active = 0;

  function remembered() { try { return JSON.parse(sessionStorage.getItem(STORE) || "[]"); } catch (e) { return []; } }
  function remember(jobId, name) { const all = remembered().filter((r) => r.jobId !== jobId); all.push({ jobId, name }); sessionStorage.setItem(STORE, JSON.stringify(all.slice(-50))); }
  function megabytes(bytes) { return filesize(bytes); }

  // The options as they are when Transcribe is pressed; disabled controls are left out by FormData.
  function options() {
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

  // What the chosen models can do: the server refuses the rest, so it is not offered, and the reason is
  // shown beside it. A comparison runs both models with the same options, so both must manage them.
  const modelSelect = form.elements.model, compareSelect = form.elements.compare;
  const languageSelect = form.elements.language, translateBox = form.elements.translate;
  const languageWhy = document.getElementById("language-why"), translateWhy = document.getElementById("translate-why");
  function multilingual(name) {
    const option = Array.from(modelSelect.options).find((o) => o.value === name);
    return !option || option.dataset.multilingual === "true";
  }
  function explain(element, text) { element.textContent = text; element.classList.toggle("hidden", !text); }
  function fitOptions() {
    const model = modelSelect.value;
    if (compareSelect) {
      for (const option of compareSelect.options) {
        if (!option.value) continue;
        option.disabled = option.value === model;
        option.textContent = option.disabled ? t("{model} (the model above)", { model: option.value }) : option.value;
      }
      if (compareSelect.value === model) compareSelect.value = "";
    }
    const englishOnly = [model, compareSelect ? compareSelect.value : ""].filter((n) => n && !multilingual(n));
    const names = englishOnly.join(", ");
    const limited = englishOnly.length > 0;
    for (const option of languageSelect.options) option.disabled = limited && option.value !== "" && option.value !== "en";
    if (languageSelect.selectedOptions[0] && languageSelect.selectedOptions[0].disabled) languageSelect.value = "";
    explain(languageWhy, limited ? t("English only ({models}): other languages need a multilingual model.", { models: names }) : "");
    translateBox.disabled = limited;
    if (limited) translateBox.checked = false;
    explain(translateWhy, limited ? t("English only ({models}): translation needs a multilingual model.", { models: names }) : "");
  }
  modelSelect.addEventListener("change", fitOptions);
  if (compareSelect) compareSelect.addEventListener("change", fitOptions);
  fitOptions();

  // How many speakers only means something when speakers are identified.
  const diarize = form.elements.diarize, speakers = form.elements.num_speakers, speakersWhy = document.getElementById("speakers-why");
  function fitSpeakers() { speakers.disabled = !diarize.checked; speakersWhy.classList.toggle("hidden", diarize.checked); }
  diarize.addEventListener("change", fitSpeakers);
  fitSpeakers();

  // Private: only when this account has keys to seal to and the browser can open the result (HTTPS).
  (function privateOption() {
    const box = form.elements.private, why = document.getElementById("private-why");
    if (!window.isSecureContext || !(window.crypto && window.crypto.subtle)) {
      box.disabled = true;
      why.textContent = t("Private transcripts need HTTPS: open this page over https:// to use them.");
    } else {
      box.disabled = box.dataset.enrolled !== "true";
    }
  })();

  // A link joins the list like a file; Enter in the field adds it (it must not start the transcription).
  const linkInput = document.getElementById("link-input"), linkWhy = document.getElementById("link-why");
  function addLink() {
    const value = linkInput.value.trim();
    let ok = false;
    try { ok = ["http:", "https:"].includes(new URL(value).protocol); } catch (e) { ok = false; }
    if (!ok) { linkWhy.textContent = t("Give a link that starts with http:// or https://."); linkInput.focus(); return; }
    linkWhy.textContent = "";
    linkInput.value = "";
    chooseLink(value);
  }
  document.getElementById("link-add").addEventListener("click", addLink);
  linkInput.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); addLink(); } });

  // The list of chosen recordings.
  function updateHint() {
    const ready = pending.filter((p) => !p.refused).length;
    document.getElementById("pending-empty").classList.toggle("hidden", pending.length > 0);
    hint.textContent = ready
      ? t("Recordings ready: {n}. Check the options, then press Transcribe.", { n: ready })
      : t("Choose one or more recordings above, then press Transcribe.");
  }

  function choose(file, { reveal = true } = {}) {
    const li = pendingTemplate.content.firstElementChild.cloneNode(true);
    const entry = { file, li, refused: file.size > maxUpload };
    li.querySelector(".p-name").textContent = file.name;
    li.querySelector(".p-size").textContent = megabytes(file.size);
    const remove = li.querySelector(".p-remove");
    remove.setAttribute("aria-label", t("Remove {name}", { name: file.name }));
    remove.addEventListener("click", () => {
      const next = li.nextElementSibling || li.previousElementSibling;
      drop(entry);
      // Keyboard users stay in the list (or go back to the picker when it is empty).
      (next ? next.querySelector(".p-remove") : input).focus();
    });
    if (entry.refused) {
      const why = li.querySelector(".p-why");
      why.textContent = t("Too large to upload: the limit is {size}. Split the recording or compress it, then add it again.", { size: megabytes(maxUpload) });
      why.classList.remove("hidden");
    }
    pending.push(entry);
    pendingList.appendChild(li);
    updateHint();
    if (reveal) li.scrollIntoView({ block: "nearest" });  // on a phone the list is below the picker, out of sight
  }

  // A link's name in the lists: its file name and host (a whole URL overflows a phone's row); the whole
  // link is the tooltip.
  function linkLabel(link) {
    const url = new URL(link);
    let name = url.pathname.split("/").pop();
    try { name = decodeURIComponent(name); } catch (e) { /* shown as it is */ }
    return `${name || url.hostname} · ${url.host}`;
  }

  function chooseLink(link, { reveal = true } = {}) {
    const li = pendingTemplate.content.firstElementChild.cloneNode(true);
    const entry = { link, li, refused: false };
    li.querySelector(".p-name").textContent = linkLabel(link);
    li.querySelector(".p-name").title = link;
    li.querySelector(".p-size").textContent = t("link");
    const remove = li.querySelector(".p-remove");
    remove.setAttribute("aria-label", t("Remove {name}", { name: linkLabel(link) }));
    remove.addEventListener("click", () => {
      const next = li.nextElementSibling || li.previousElementSibling;
      drop(entry);
      (next ? next.querySelector(".p-remove") : linkInput).focus();
    });
    pending.push(entry);
    pendingList.appendChild(li);
    updateHint();
    if (reveal) li.scrollIntoView({ block: "nearest" });
  }

  function drop(entry) {
    pending.splice(pending.indexOf(entry), 1);
    entry.li.remove();
    updateHint();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ready = pending.filter((p) => !p.refused);
    if (!ready.length) {
      hint.textContent = pending.length
        ? t("None of these recordings can be uploaded: remove them and choose others.")
        : t("Choose a recording first: pick or drop files, or record from the microphone.");
      input.focus();
      return;
    }
    const fields = options();
    for (const entry of ready) { drop(entry); enqueue(entry.file, fields, entry.link); }
    hint.textContent = t("Transcriptions started: {n}. Progress is shown below.", { n: ready.length });
    // The queue is below the options, out of sight on most screens: bring it into view, and tell a screen reader.
    queueSection.scrollIntoView({ block: "start" });
    document.getElementById("queue-h").focus({ preventScroll: true });
  });

  // Started transcriptions.
  function addRow(name) {
    const li = rowTemplate.content.firstElementChild.cloneNode(true);
    li.querySelector(".f-name").textContent = name;
    queueList.appendChild(li);
    document.getElementById("queue-empty").classList.add("hidden");
    return li;
  }

  const part = (item, name) => item.li.querySelector(name);
  function setState(item, text) { part(item, ".f-state").textContent = text; }
  function setError(item, text) { part(item, ".f-error").textContent = text || ""; }

  function enqueue(file, fields, link) {
    const item = { file, link, fields, li: addRow(link ? linkLabel(link) : file.name), xhr: null, jobId: null, stop: null, waiting: true };
    if (link) part(item, ".f-name").title = link;
    items.push(item);
    wire(item);
    setState(item, t("Waiting to upload"));
    pump();
  }

  function pump() {
    while (active < PARALLEL) {
      const next = items.find((i) => i.waiting);
      if (!next) return;
      next.waiting = false;
      (next.link ? importLink : upload)(next);
    }
  }

  function upload(item) {
    active += 1;
    const fields = item.fields;
    item.private = fields.private === "true";
    const body = new FormData();
    for (const [k, v] of Object.entries(fields)) if (k !== "workspace_id") body.append(k, v);
    body.append("file", item.file, item.file.name);
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    const bar = part(item, ".f-progress");
    xhr.open("POST", "/api/v1/transcriptions" + (fields.workspace_id ? `?workspace_id=${encodeURIComponent(fields.workspace_id)}` : ""));
    xhr.setRequestHeader("X-CSRF-Token", window.Sotto.csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); setState(item, t("Uploading {percent}%", { percent: bar.value })); } };
    const done = () => { active -= 1; item.xhr = null; pump(); };
    xhr.onload = () => {
      done();
      let reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: described by its status */ }
      if (xhr.status >= 200 && xhr.status < 300) { started(item, reply); return; }
      failed(item, refusal(xhr.status, reply.detail));
    };
    xhr.onerror = () => { done(); failed(item, refusal(0)); };
    xhr.onabort = () => { done(); ended(item, t("Cancelled"), "", t("The upload was stopped before the appliance had the whole file. Retry sends it again.")); };
    setState(item, t("Uploading {percent}%", { percent: 0 }));
    xhr.send(body);
  }

  // The appliance fetches the link; the options are the upload's (as JSON, without the workspace).
  async function importLink(item) {
    active += 1;
    const { workspace_id: workspace, ...fields } = item.fields;
    item.private = fields.private === "true";
    part(item, ".f-progress").removeAttribute("value");  // indeterminate: the appliance is fetching
    setState(item, t("Fetching the link…"));
    try {
      const job = await api("POST", "/api/v1/transcriptions/from-link", { url: item.link, options: fields, workspace_id: workspace || null });
      part(item, ".f-progress").value = 0;
      started(item, job);
    } catch (err) {
      const answer = refusal(err.status, err.body && err.body.detail);
      if (err.status === 403 && err.body && err.body.detail) answer.help = t("Only links to the media hosts an administrator listed (Integrations) can be imported.");
      if (err.status === 502 || err.status === 504) { answer.message = err.body.detail; answer.help = t("Check that the link opens from the appliance's network, then retry."); }
      failed(item, answer);
    } finally { active -= 1; pump(); }
  }

  // What went wrong with an upload, what to do about it, and whether sending the same file again can help.
  function refusal(status, detail) {
    const said = detail ? `${detail}` : "";
    if (status === 0) return { message: t("The upload did not reach the appliance: the connection was lost."), help: t("Check the network connection, then retry."), retry: true };
    if (status === 400) return { message: said || t("The appliance refused these options."), help: "", retry: false, back: true };
    if (status === 401) return { message: t("You were signed out."), help: t("Sign in again in another tab, then retry."), retry: true };
    if (status === 413) return { message: said || t("The recording is too large."), help: t("Split it into shorter parts, then add them."), retry: false };
    if (status === 415) return { message: said || t("This file is not audio or video the appliance can read."), help: t("Convert it to a common format (MP3, M4A, WAV or FLAC), then add it again."), retry: false };
    if (status === 429 || status === 503) return { message: said || t("The appliance is busy."), help: t("Wait a minute, then retry."), retry: true };
    if (status === 402 || status === 403) return { message: said || t("You may not start transcriptions here."), help: t("Ask an administrator."), retry: false };
    if (status >= 500) return { message: t("The appliance could not take the upload (error {status}).", { status }), help: t("Retry; if it keeps failing, tell your administrator."), retry: true };
    return { message: said || t("The appliance answered {status}.", { status }), help: "", retry: false };
  }

  function failed(item, { message, help, retry, back }) {
    // Refused options: the same file with other options can work, so it goes back to the list for them.
    if (back && (item.file || item.link)) {
      if (item.link) chooseLink(item.link, { reveal: false }); else choose(item.file, { reveal: false });
      help = t("The file is back in the list above: change the options, then press Transcribe.");
    }
    ended(item, t("Failed"), message, help, retry);
  }

  // An upload or job that ended without a transcript: no bar (it got nowhere), what happened and what
  // to do, and Retry only where sending the file again can help.
  function ended(item, state, message, help, retry = true) {
    item.li.classList.add("is-failed");
    setState(item, state);
    setError(item, message);
    part(item, ".f-help").textContent = help || "";
    part(item, ".f-progress").classList.add("hidden");
    part(item, ".f-stages").classList.add("hidden");
    part(item, ".f-cancel").classList.add("hidden");
    part(item, ".f-retry").classList.toggle("hidden", !(retry && (item.file || item.link)));
  }

  function started(item, job) {
    item.jobId = job.id;
    remember(job.id, item.file ? item.file.name : item.link ? linkLabel(item.link) : job.filename);
    follow(item);
  }

  function follow(item) {
    part(item, ".f-stages").classList.remove("hidden");
    part(item, ".f-cancel").classList.remove("hidden");
    item.stop = watchJob(item.jobId, (job) => {
      render(item.li, job);
      if (job.state === "failed") {
        const again = item.file ? t("Retry sends the file again; if it fails the same way, try another copy of the recording.") : t("Upload the file again.");
        failed(item, { message: job.error || t("The transcription failed."), help: again, retry: true });
        return;
      }
      if (job.state === "cancelled") { ended(item, t("Cancelled"), "", item.file ? t("Retry starts it again.") : ""); return; }
      setState(item, describe(job));
      setError(item, job.error);
      if (job.state === "done") part(item, ".f-cancel").classList.add("hidden");
      if (job.transcript_id) {
        const open = part(item, ".f-open");
        open.href = `/t/${job.transcript_id}`; open.dataset.transcript = job.transcript_id; open.classList.remove("hidden");
      }
      if ((job.transcript_ids || []).length > 1) {
        const cmp = part(item, ".f-compare");
        cmp.href = `/compare/${job.id}`; cmp.classList.remove("hidden");
      }
    }, (ok) => { if (!ok) setState(item, t("Reconnecting…")); });
  }

  function wire(item) {
    part(item, ".f-cancel").addEventListener("click", async () => {
      if (item.waiting) { item.waiting = false; ended(item, t("Cancelled"), "", t("Retry starts it again.")); return; }
      if (item.xhr) { item.xhr.abort(); return; }
      if (item.jobId) { try { await api("DELETE", `/api/v1/jobs/${item.jobId}`); } catch (err) { setError(item, err.message); } }
    });
    part(item, ".f-retry").addEventListener("click", () => {
      if (item.stop) item.stop();
      item.jobId = null; item.stop = null;
      item.li.classList.remove("is-failed");
      part(item, ".f-retry").classList.add("hidden");
      part(item, ".f-cancel").classList.remove("hidden");
      const bar = part(item, ".f-progress");
      bar.value = 0; bar.classList.remove("hidden");
      setError(item, ""); part(item, ".f-help").textContent = "";
      item.waiting = true; setState(item, t("Waiting to upload")); pump();
    });
    part(item, ".f-open").addEventListener("click", (event) => {
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
      const editor = await import("/static/editor-0.4.js");
      editor.mount({ file });
      window.scrollTo(0, 0);
    } catch (err) { window.location.assign(href); }
  }

  // Files: picker and drag-and-drop add to the list; nothing is sent yet.
  input.addEventListener("change", () => { Array.from(input.files).forEach(choose); input.value = ""; });
  const zone = document.getElementById("dropzone");
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("is-over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("is-over"); }));
  zone.addEventListener("drop", (e) => Array.from(e.dataTransfer.files).forEach(choose));

  // Microphone: a finished recording joins the list like a picked file.
  const startBtn = document.getElementById("rec-start"), stopBtn = document.getElementById("rec-stop");
  const timer = document.getElementById("rec-timer"), level = document.getElementById("rec-level");
  const why = document.getElementById("rec-unavailable");
  let recorder = null, recStart = 0, tick = null, audioCtx = null, stream = null;
  if (!window.isSecureContext || !navigator.mediaDevices || !window.MediaRecorder) {
    startBtn.disabled = true; why.classList.remove("hidden");
    why.textContent = t("Recording needs HTTPS (browsers allow the microphone only on secure pages). Open the appliance at its https:// address.");
  }
  const mime = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"].find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t)) || "";
  startBtn.addEventListener("click", async () => {
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
    catch (err) { why.textContent = t("The microphone is not available: {reason}", { reason: err.message }); why.classList.remove("hidden"); return; }
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
      choose(new File(chunks, t("Recording {stamp}", { stamp }) + `.${ext}`, { type }));
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
    stopBtn.focus();
  });
  stopBtn.addEventListener("click", () => { if (recorder) recorder.stop(); startBtn.disabled = false; stopBtn.disabled = true; startBtn.focus(); });

  // Leaving while recording, with recordings not yet started, or while uploading loses that work: ask first.
  window.addEventListener("beforeunload", (e) => { if (recorder || active > 0 || pending.length > 0) { e.preventDefault(); e.returnValue = ""; } });

  // After a reload: the jobs this tab started, still watched (their audio is gone from this page).
  for (const r of remembered()) {
    const item = { file: null, li: addRow(r.name), xhr: null, jobId: r.jobId, stop: null };
    items.push(item); wire(item); part(item, ".f-progress").value = 100; follow(item);
  }
})();
