// Poll an import or export job until it ends, moving the progress bar; then reload to show its report.
(function () {
  "use strict";
  var card = document.getElementById("content-job");
  if (!card || card.dataset.finished) return;
  var bar = document.getElementById("job-progress");
  var stage = document.getElementById("job-stage");

  function poll() {
    fetch(card.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (job) {
        bar.value = Math.round(job.progress * 100);
        bar.textContent = bar.value + "%";
        stage.textContent = job.stage;
        if (job.finished) window.location.reload();
        else setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
