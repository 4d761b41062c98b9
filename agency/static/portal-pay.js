// Card payment in the debtor portal: Stripe.js's card Element and confirmCardPayment.
// The card goes from this page to Stripe only; the server learns the outcome from Stripe.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") return;
  var data = form.dataset;
  var stripe = Stripe(data.key, { locale: data.locale });
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var message = document.getElementById("card-message");
  var status = document.getElementById("card-status");
  var button = form.querySelector("button[type=submit]");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    message.textContent = "";
    status.textContent = data.working;
    stripe
      .confirmCardPayment(data.secret, {
        payment_method: { card: card, billing_details: { name: data.name } },
      })
      .then(function (result) {
        if (result.error) {
          status.textContent = "";
          message.textContent = result.error.message || data.failed;
          button.disabled = false;
          return;
        }
        // Succeeded or processing: the server reads the PaymentIntent from Stripe and decides.
        window.location.assign(data.done);
      })
      .catch(function () {
        status.textContent = "";
        message.textContent = data.failed;
        button.disabled = false;
      });
  });
})();
