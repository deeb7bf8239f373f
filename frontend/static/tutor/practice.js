// The practice page: answers, hints and scaffold checks go to the JSON API; after each step the
// server re-renders the problem panel (one rendering path for Markdown and math).
(function () {
  const page = document.querySelector(".practice");
  if (!page) return;
  const session = Number(page.dataset.session);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) {
      const detail = data.detail || Object.values(data).flat().join(" ") || "Something went wrong; try again.";
      throw new Error(detail);
    }
    return data;
  }

  function band(p) { return p >= 0.95 ? "proficient" : p >= 0.7 ? "near" : "needs-help"; }

  function showMastery(change) {
    Object.entries(change || {}).forEach(function ([slug, [, after]]) {
      document.querySelectorAll('.skill[data-skill="' + slug + '"]').forEach(function (el) {
        const pct = Math.round(after * 100);
        el.querySelector(".pct").textContent = pct + "%";
        const bar = el.querySelector(".bar");
        bar.className = "bar " + band(after) + " changed";
        bar.setAttribute("aria-valuenow", pct);
        bar.querySelector(".fill").style.width = pct + "%";
      });
    });
  }

  function setFeedback(text, kind) {
    const el = document.getElementById("feedback");
    if (!el) return;
    el.textContent = text;
    el.className = "feedback " + (kind || "");
  }

  async function reloadProblem(keepFeedback) {
    const previous = keepFeedback && document.getElementById("feedback");
    const saved = previous ? [previous.textContent, previous.className] : null;
    const response = await fetch(page.dataset.fragmentUrl, { credentials: "same-origin" });
    document.getElementById("problem").innerHTML = await response.text();
    window.renderMath(document.getElementById("problem"));
    if (saved) { const el = document.getElementById("feedback"); el.textContent = saved[0]; el.className = saved[1]; }
    const input = document.querySelector("#answer, .answer input[type=radio]");
    if (input) input.focus();
  }

  function currentStep() {
    const problem = document.querySelector(".problem");
    return problem ? Number(problem.dataset.step) : null;
  }

  function continueButton() {
    const button = document.createElement("button");
    button.type = "button";
    button.id = "continue";
    button.textContent = "Continue";
    button.addEventListener("click", function () { reloadProblem(false); });
    document.getElementById("feedback").appendChild(document.createTextNode(" "));
    document.getElementById("feedback").appendChild(button);
    button.focus();
  }

  page.addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = event.target;
    const answer = (new FormData(form).get("answer") || "").toString();
    if (form.classList.contains("scaffold")) {
      const out = form.querySelector(".scaffold-feedback");
      try {
        const result = await post(page.dataset.scaffoldUrl,
          { session: session, step: currentStep(), level: Number(form.dataset.level), answer: answer });
        out.textContent = result.feedback;
      } catch (error) { out.textContent = error.message; }
      return;
    }
    if (!answer.trim()) { setFeedback("Enter an answer first.", "error"); return; }
    const button = document.getElementById("submit");
    button.disabled = true;
    try {
      const result = await post(page.dataset.attemptUrl,
        { session: session, step: currentStep(), answer: answer, idempotency_key: newKey() });
      showMastery(result.mastery_change);
      setFeedback(result.feedback, result.correct ? "correct" : "incorrect");
      if (result.step_complete) {
        form.querySelectorAll("input, button").forEach(function (el) { el.disabled = true; });
        continueButton();
        return;
      }
    } catch (error) {
      setFeedback(error.message, "error");
    }
    button.disabled = false;
  });

  page.addEventListener("click", async function (event) {
    if (event.target.id !== "hint") return;
    try {
      const result = await post(page.dataset.hintUrl,
        { session: session, step: currentStep(), idempotency_key: newKey() });
      showMastery(result.mastery_change);
      await reloadProblem(true);
      const hints = document.querySelectorAll("#hints li");
      if (hints.length) hints[hints.length - 1].setAttribute("tabindex", "-1"), hints[hints.length - 1].focus();
    } catch (error) {
      setFeedback(error.message, "error");
    }
  });
})();
