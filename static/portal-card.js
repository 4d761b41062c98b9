// Card forms in the debtor portal, on Stripe.js: pay now (confirmCardPayment with the card
// Element), save a card for autopay (confirmCardSetup, a SetupIntent), and confirm on-session an
// installment the bank wants authenticated (confirmCardPayment). The card goes from this page to
// Stripe only; the server reads the outcome back from Stripe and decides.
(function () {
  "use strict";
  if (typeof Stripe === "undefined") return;
  var message = document.getElementById("card-message");
  var status = document.getElementById("card-status");

  function wire(form, confirm) {
    var data = form.dataset;
    var stripe = Stripe(data.key, { locale: data.locale });
    var card = null;
    if (document.getElementById("card-element")) {
      card = stripe.elements().create("card");
      card.mount("#card-element");
    }
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      message.textContent = "";
      status.textContent = data.working;
      confirm(stripe, data, card)
        .then(function (result) {
          if (result.error) {
            status.textContent = "";
            message.textContent = result.error.message || data.failed;
            button.disabled = false;
            return;
          }
          // Succeeded or processing: the server reads the intent from Stripe and decides.
          window.location.assign(data.done);
        })
        .catch(function () {
          status.textContent = "";
          message.textContent = data.failed;
          button.disabled = false;
        });
    });
  }

  function withCard(data, card) {
    return { payment_method: { card: card, billing_details: { name: data.name } } };
  }

  var forms = {
    "card-form": function (stripe, data, card) {
      return stripe.confirmCardPayment(data.secret, withCard(data, card));
    },
    "setup-form": function (stripe, data, card) {
      return stripe.confirmCardSetup(data.secret, withCard(data, card));
    },
    "confirm-form": function (stripe, data) {
      return stripe.confirmCardPayment(data.secret);
    },
  };
  Object.keys(forms).forEach(function (id) {
    var form = document.getElementById(id);
    if (form) wire(form, forms[id]);
  });
})();
