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
