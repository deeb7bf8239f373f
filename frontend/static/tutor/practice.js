// The practice page: answers, hints and scaffold checks go to the JSON API; after each step the
// server re-renders the problem panel (one rendering path for Markdown and math). Help goes to the tutor over
// the websocket ws/hints/, whose reply arrives sentence by sentence; without the websocket the Hint button
// climbs the lesson's ladder through the JSON API as before.
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
    showHelpButton();
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

  // --- the tutor ---------------------------------------------------------------------------------
  let socket = null;
  let tutorReady = false;
  let waiting = null; // the request the tutor is answering: {li} once its reply has started

  function tutorStatus(text) {
    const el = document.getElementById("tutor-status");
    if (el) el.textContent = text;
  }

  // The Help button's label and the reply box follow the connection: the tutor's levels while it is there,
  // the lesson's ladder through the JSON API when it is not.
  function showHelpButton() {
    const button = document.getElementById("hint");
    const panel = document.getElementById("tutor-panel");
    if (!button || !panel) return;
    const level = Number(button.dataset.level);
    const total = Number(tutorReady ? button.dataset.tutorTotal : button.dataset.total);
    button.textContent = (tutorReady ? "Help (" : "Hint (") + level + " of " + total + ")";
    button.disabled = Boolean(waiting) || level >= total;
    const reply = document.getElementById("tutor-reply");
    reply.hidden = !tutorReady || panel.dataset.policy === "authored";
    reply.querySelectorAll("input, button").forEach(function (el) { el.disabled = Boolean(waiting); });
  }

  function connectTutor() {
    if (!window.WebSocket) return;
    try {
      socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/hints/");
    } catch (error) { return; }
    socket.addEventListener("open", function () { tutorReady = true; showHelpButton(); });
    socket.addEventListener("close", function () {
      tutorReady = false;
      socket = null;
      if (waiting) { setFeedback("The connection to the tutor was lost; press Hint for the lesson's next hint.", "error"); }
      waiting = null;
      tutorStatus("");
      showHelpButton();
    });
    socket.addEventListener("message", function (event) {
      let data;
      try { data = JSON.parse(event.data); } catch (error) { return; }
      onTutorMessage(data);
    });
  }

  function turnItem(cls) {
    const li = document.createElement("li");
    li.className = cls;
    const who = document.createElement("span");
    who.className = "who";
    const said = document.createElement("span");
    said.className = "said";
    li.appendChild(who);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(said);
    document.getElementById("hints").appendChild(li);
    return li;
  }

  function onTutorMessage(data) {
    if (data.type === "error") {
      if (waiting && waiting.mine) waiting.mine.remove();
      waiting = null;
      tutorStatus("");
      setFeedback(data.message, "error");
      showHelpButton();
      return;
    }
    if (!waiting) return;
    if (data.type === "hint.start") {
      showMastery(data.mastery_change);
      const button = document.getElementById("hint");
      button.dataset.level = data.level;
      button.dataset.tutorTotal = data.total;
      waiting.li = turnItem("hint tutor-turn");
      waiting.li.dataset.level = data.level;
      waiting.li.querySelector(".who").textContent = "Tutor";
      tutorStatus("The tutor is writing…");
    } else if (data.type === "hint.chunk" && waiting.li) {
      const said = waiting.li.querySelector(".said");
      said.textContent = (said.textContent ? said.textContent + " " : "") + data.text;
    } else if (data.type === "hint.done" && waiting.li) {
      const li = waiting.li;
      li.dataset.source = data.source;
      li.querySelector(".who").textContent =
        data.source === "model" || data.source === "mixed" ? "Tutor" : data.source === "authored" ? "From the lesson" : "Tip";
      li.querySelector(".said").textContent = data.text;
      if (data.note) {
        const note = document.createElement("p");
        note.className = "tutor-note";
        note.textContent = data.note;
        li.appendChild(note);
      }
      waiting = null;
      tutorStatus("");
      showHelpButton();
    }
  }

  function askTutor(action, message) {
    if (waiting) return;
    waiting = { li: null, mine: null };
    if (message) {
      waiting.mine = turnItem("learner-says");
      waiting.mine.querySelector(".who").textContent = "You";
      waiting.mine.querySelector(".said").textContent = message;
    }
    setFeedback("", "");
    tutorStatus("The tutor is thinking…");
    showHelpButton();
    socket.send(JSON.stringify({
      action: action, session_id: session, step_id: currentStep(), message: message || "", client_key: newKey(),
    }));
  }

  page.addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = event.target;
    if (form.id === "tutor-reply") {
      const input = document.getElementById("tutor-message");
      const message = input.value.trim();
      if (!message) { setFeedback("Write your message to the tutor first.", "error"); return; }
      if (!tutorReady) { setFeedback("The tutor is not connected; reload the page to try again.", "error"); return; }
      input.value = "";
      askTutor("reply", message);
      return;
    }
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
        document.querySelectorAll("#tutor-reply input, #tutor-reply button").forEach(function (el) {
          el.disabled = true;
        });
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
    if (tutorReady) { askTutor("help", ""); return; }
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

  connectTutor();
})();
