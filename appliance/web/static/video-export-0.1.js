// "Video with subtitles…" in the Export menu: the user picks the video again (the appliance keeps no
// recordings), the server renders it in the background, this dialog shows the progress and then offers
// the download. Enter starts (then downloads); Esc or Cancel close the dialog and stop or drop the render.
const dialog = document.getElementById("video-dialog");
const opener = document.getElementById("video-open");
if (dialog && opener) {
  const { t } = window.SottoI18n;
  const form = document.getElementById("video-form");
  const file = document.getElementById("video-file");
  const bar = document.getElementById("video-progress");
  const status = document.getElementById("video-status");
  const error = document.getElementById("video-error");
  const start = document.getElementById("video-start");
  const id = form.dataset.transcript;
  let render = null;  // {id, state, filename} while one is running or waiting for its download
  let timer = null;
  let opened = 0;  // counts openings: an answer that comes after its dialog was closed is dropped

  function reset() {
    render = null; clearTimeout(timer);
    bar.classList.add("hidden"); bar.value = 0;
    status.textContent = ""; error.textContent = "";
    start.textContent = t("Start"); start.disabled = false;
    for (const field of form.elements) if (field !== start) field.disabled = false;
  }

  function busy(on) {
    for (const field of form.elements) if (field.tagName !== "BUTTON") field.disabled = on;
  }

  async function follow() {
    if (!render) return;
    let doc;
    try { doc = await window.Sotto.api("GET", `/api/v1/video-renders/${render.id}`); }
    catch (err) { error.textContent = err.message; busy(false); render = null; start.disabled = false; return; }
    if (!render || render.id !== doc.id) return;  // closed meanwhile
    render = doc;
    bar.value = Math.round(doc.progress * 100);
    if (doc.state === "running") {
      status.textContent = t("Rendering… {percent}%", { percent: bar.value });
      timer = setTimeout(follow, 500);
    } else if (doc.state === "done") {
      status.textContent = t("Ready: {size}.", { size: window.SottoI18n.filesize(doc.size_bytes) });
      start.textContent = t("Download"); start.disabled = false;
      start.focus();
    } else {
      error.textContent = doc.error || t("The video could not be rendered.");
      render = null; busy(false); start.disabled = false; bar.classList.add("hidden");
    }
  }

  async function begin() {
    error.textContent = "";
    if (!file.files.length) { error.textContent = t("Choose the video file first."); file.focus(); return; }
    const body = new FormData();
    for (const name of ["kind", "size", "position", "max_chars_per_line"]) body.append(name, form.elements[name].value);
    body.append("speakers", form.elements.speakers.checked ? "true" : "false");
    body.append("file", file.files[0]);
    busy(true); start.disabled = true;
    bar.classList.remove("hidden"); bar.removeAttribute("value");  // indeterminate while the video uploads
    status.textContent = t("Sending the video…");
    const mine = opened;
    let response;
    try {
      response = await fetch(`/api/v1/transcripts/${id}/video`, {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": window.Sotto.csrf },
      });
    } catch (err) { response = null; }
    const answer = response ? await response.json().catch(() => ({})) : {};
    if (mine !== opened) {
      if (response && response.ok) window.Sotto.api("DELETE", `/api/v1/video-renders/${answer.id}`).catch(() => {});
      return;
    }
    if (!response || !response.ok) {
      error.textContent = answer.detail || t("The appliance cannot be reached. Check the connection.");
      status.textContent = ""; bar.classList.add("hidden"); busy(false); start.disabled = false;
      return;
    }
    render = answer; bar.value = 0;
    follow();
  }

  function fetchResult() {
    // A plain link: the browser streams the file to disk itself instead of holding it in this page.
    const a = document.createElement("a");
    a.href = `/api/v1/video-renders/${render.id}/file`; a.download = render.filename;
    document.body.appendChild(a); a.click(); a.remove();
    render = null;  // downloaded: the server drops it
    dialog.close("done");
  }

  opener.addEventListener("click", (event) => {
    event.preventDefault();
    opener.closest("details").open = false;
    reset(); dialog.showModal(); file.focus();
  });
  file.addEventListener("change", () => { if (file.files.length) start.focus(); });  // then Enter starts
  form.addEventListener("submit", (event) => {
    event.preventDefault();  // the dialog stays open while the render runs
    if (render && render.state === "done") fetchResult();
    else if (!render) begin();
  });
  dialog.addEventListener("close", () => {
    opened += 1; clearTimeout(timer);
    if (render) window.Sotto.api("DELETE", `/api/v1/video-renders/${render.id}`).catch(() => {});
    render = null;
  });
}
