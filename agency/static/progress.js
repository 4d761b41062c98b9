// Polls an import's progress and reloads the page when it has finished.
(function () {
  "use strict";
  var card = document.getElementById("progress-card");
  if (!card) { return; }
  var bar = document.getElementById("import-progress");
  var text = document.getElementById("progress-text");
  function poll() {
    fetch(card.dataset.statusUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        bar.value = s.percent;
        bar.textContent = s.percent + "%";
        text.textContent = s.processed + " of " + s.total + " rows";
        if (s.status === "queued" || s.status === "importing") {
          window.setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
