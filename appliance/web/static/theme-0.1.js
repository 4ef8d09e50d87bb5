// Light or dark: the system setting, unless the reader picked one in the footer (kept in this browser's
// localStorage, nowhere else). Loaded in <head>, before the body paints, so a chosen theme never flashes.
(function () {
  "use strict";
  const KEY = "sotto-theme";
  const stored = () => { try { return localStorage.getItem(KEY) || "system"; } catch (err) { return "system"; } };
  const apply = (choice) => {
    if (choice === "light" || choice === "dark") document.documentElement.dataset.theme = choice;
    else delete document.documentElement.dataset.theme;
  };
  apply(stored());
  document.addEventListener("DOMContentLoaded", () => {
    const pick = document.getElementById("theme-pick");
    if (!pick) return;
    pick.value = stored();
    pick.addEventListener("change", () => {
      try { if (pick.value === "system") localStorage.removeItem(KEY); else localStorage.setItem(KEY, pick.value); } catch (err) { /* private browsing: this page only */ }
      apply(pick.value);
    });
  });
})();
