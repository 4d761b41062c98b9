// Autopay in the debtor portal: save a card with confirmCardSetup (SetupIntent), and confirm
// on-session an installment the bank wants authenticated with confirmCardPayment. The card goes
// from this page to Stripe only; the server reads the outcome back from Stripe.
(function () {
  "use strict";
  if (typeof Stripe === "undefined") return;
  var message = document.getElementById("card-message");
  var status = document.getElementById("card-status");

  function wire(form, confirm) {
    var data = form.dataset;
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      message.textContent = "";
      status.textContent = data.working;
      confirm(data)
        .then(function (result) {
          if (result.error) {
            status.textContent = "";
            message.textContent = result.error.message || data.failed;
            button.disabled = false;
            return;
          }
          window.location.assign(data.done);
        })
        .catch(function () {
          status.textContent = "";
          message.textContent = data.failed;
          button.disabled = false;
        });
    });
  }

  var setup = document.getElementById("setup-form");
  if (setup) {
    var stripe = Stripe(setup.dataset.key, { locale: setup.dataset.locale });
    var card = stripe.elements().create("card");
    card.mount("#card-element");
    wire(setup, function (data) {
      return stripe.confirmCardSetup(data.secret, {
        payment_method: { card: card, billing_details: { name: data.name } },
      });
    });
  }
  var confirmForm = document.getElementById("confirm-form");
  if (confirmForm) {
    var stripe2 = Stripe(confirmForm.dataset.key, { locale: confirmForm.dataset.locale });
    wire(confirmForm, function (data) {
      return stripe2.confirmCardPayment(data.secret);
    });
  }
})();
