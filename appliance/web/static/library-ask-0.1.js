// The Search page's question box: a question across every transcript the person may see, answered by
// the appliance's AI from their words (POST /api/v1/ask), with the moments it used as links.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  const { api, clock } = window.Sotto;
  const form = document.getElementById("ask-form");
  if (!form) return;
  const state = document.getElementById("ask-state"), answer = document.getElementById("ask-answer"), list = document.getElementById("ask-citations");
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text != null) n.textContent = text; if (cls) n.className = cls; return n; };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = form.elements.question.value.trim();
    if (!question) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    state.className = ""; state.textContent = t("Looking through your transcripts…");
    answer.textContent = ""; list.replaceChildren();
    try {
      const out = await api("POST", "/api/v1/ask", { question });
      if (!out.found) { state.textContent = t("None of your transcripts is about this."); return; }
      // "retrieved": the model cited nothing usable, so the passages it was given are shown to check it against.
      state.textContent = out.grounding === "retrieved" ? t("The AI cited nothing; these are the passages it read.") : "";
      answer.textContent = out.answer;
      list.replaceChildren(...out.citations.map((c) => {
        const li = el("li"), link = el("a");
        link.href = c.link;
        link.append(el("strong", c.title), ` · ${clock(c.start * 1000)}`);
        li.append(link, el("p", c.text, "snippet"));
        return li;
      }));
    } catch (err) {
      state.className = "error"; state.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
})();
