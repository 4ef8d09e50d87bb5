// A form that the page's own script sends (one with no method attribute, or data-api-form) must not be
// sent by the browser before that script is in: the browser would send it as a GET to this page, so the
// fields (a password on the sign-in page) would land in the address bar and history, and nothing would
// happen. Loaded in <head>, before any form exists: a submit that comes too early is held, then sent
// again through the page's script once every script at the end of <body> has run.
(function () {
  "use strict";
  let ready = false;
  const held = [];
  const scripted = (form) => !form.hasAttribute("method") || form.hasAttribute("data-api-form");
  window.addEventListener("submit", (event) => {
    if (ready) return;
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !scripted(form)) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (!held.some((entry) => entry.form === form)) held.push({ form, submitter: event.submitter || null });
  }, true);
  // And should the page's script never arrive (a network error, a blocked file), the browser still must
  // not send such a form: this listener runs last, after the form's own handlers; if none of them took the
  // submit, it is stopped here and the person is told to reload.
  window.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement) || !scripted(form)) return;
    event.preventDefault();
    const t = (text) => (window.SottoI18n ? window.SottoI18n.t(text) : text);
    let note = form.previousElementSibling;
    if (!note || !note.hasAttribute("data-not-loaded")) {
      note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      note.setAttribute("data-not-loaded", "");
      form.before(note);
    }
    note.textContent = t("This page did not finish loading, so nothing was sent. Reload the page and try again.");
  });
  document.addEventListener("DOMContentLoaded", () => {
    // After the other DOMContentLoaded listeners too: some pages wire their forms in one.
    setTimeout(() => {
      ready = true;
      for (const { form, submitter } of held.splice(0)) {
        if (form.isConnected) form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      }
    }, 0);
  });
})();
