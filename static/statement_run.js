// Polls a statement run's progress (its JSON) and reloads the page once the run has finished,
// so the statements issued are listed. Without JavaScript the page refreshes itself instead.
(function () {
  "use strict";
  var card = document.getElementById("run-progress");
  if (!card || card.dataset.finished === "yes") { return; }
  var bar = document.getElementById("run-bar");
  var text = document.getElementById("run-text");
  var failures = 0;
  function poll() {
    fetch(card.dataset.statusUrl, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
          throw new Error("status " + r.status);
        }
        return r.json();
      })
      .then(function (s) {
        failures = 0;
        bar.max = s.total;
        bar.value = s.done;
        bar.textContent = s.percent + "%";
        text.textContent = s.done + " of " + s.total + (s.total === 1 ? " client" : " clients") +
          " done: " + s.issued + " issued, " + s.unchanged + " already issued (unchanged), " +
          s.failed + " failed.";
        if (s.status === "finished") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        failures += 1;
        if (failures >= 5) {
          text.textContent = "We could not get the progress. The run goes on; refresh the page to see it.";
          return;
        }
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 500);
})();
