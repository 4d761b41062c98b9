// Polls an import's progress and reloads the page when it has finished.
(function () {
  "use strict";
  var card = document.getElementById("progress-card");
  if (!card) { return; }
  var bar = document.getElementById("import-progress");
  var failures = 0;
  var text = document.getElementById("progress-text");
  function poll() {
    fetch(card.dataset.statusUrl, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok || r.headers.get("Content-Type").indexOf("application/json") !== 0) {
          throw new Error("status " + r.status);
        }
        return r.json();
      })
      .then(function (s) {
        failures = 0;
        bar.value = s.percent;
        bar.textContent = s.percent + "%";
        text.textContent = s.processed + " of " + s.total + " rows";
        if (s.status === "queued" || s.status === "importing") {
          window.setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        failures += 1;
        if (failures >= 5) {
          text.textContent = "We could not get the progress. The import goes on; refresh the page to see it.";
          return;
        }
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 500);
})();
