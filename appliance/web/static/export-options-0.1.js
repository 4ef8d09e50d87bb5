// Export options (times, speaker names, subtitle line rules): kept in every export link of the menu, so
// whatever makes the download (the editor saves first, then fetches the link) asks for these options.
const form = document.getElementById("export-options");
if (form) {
  const links = document.querySelectorAll("#export-menu a[data-export]");
  const DEFAULTS = { timestamps: true, speakers: true, max_chars_per_line: "42", max_lines: "2" };
  const apply = () => {
    const data = new FormData(form);
    const chosen = {
      timestamps: data.get("timestamps") === "on", speakers: data.get("speakers") === "on",
      max_chars_per_line: data.get("max_chars_per_line") || "42", max_lines: data.get("max_lines") || "2",
    };
    for (const a of links) {
      const url = new URL(a.getAttribute("href"), window.location.origin);
      for (const [name, value] of Object.entries(chosen)) {
        if (String(value) === String(DEFAULTS[name])) url.searchParams.delete(name);  // only what differs
        else url.searchParams.set(name, String(value));
      }
      a.setAttribute("href", url.pathname + url.search);
    }
  };
  form.addEventListener("change", apply);
  form.addEventListener("submit", (e) => e.preventDefault());
}
