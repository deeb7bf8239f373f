// Live preview on the item's admin page: the form as it stands (saved or not) is posted to the preview view,
// which renders the practice page's problem panel; the answer is never checked here.
(function () {
  "use strict";
  var frame = document.getElementById("item-preview");
  var form = document.getElementById("item_form");
  var stepChoice = document.getElementById("preview-step");
  if (!frame || !form || !stepChoice) return;
  var timer = null;
  var pending = null;

  function stepCount() {
    var total = form.querySelector("input[name='steps-TOTAL_FORMS']");
    return total ? Math.max(1, parseInt(total.value, 10) || 1) : 1;
  }

  function syncStepChoice() {
    var count = stepCount();
    var chosen = Math.min(parseInt(stepChoice.value, 10) || 0, count - 1);
    stepChoice.innerHTML = "";
    for (var i = 0; i < count; i += 1) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = String(i + 1);
      stepChoice.appendChild(option);
    }
    stepChoice.value = String(chosen);
  }

  function refresh() {
    syncStepChoice();
    var data = new FormData(form);
    data.set("preview_step", stepChoice.value);
    if (pending) pending.abort();
    pending = new AbortController();
    fetch(frame.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin", signal: pending.signal })
      .then(function (response) { return response.text(); })
      .then(function (html) { frame.srcdoc = html; })
      .catch(function (error) { if (error.name !== "AbortError") frame.srcdoc = "<p>The preview could not be loaded.</p>"; });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  stepChoice.addEventListener("change", refresh);
  refresh();
})();
