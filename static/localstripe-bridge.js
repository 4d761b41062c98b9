// Loaded only when the app talks to a fake Stripe (localstripe: STRIPE_API_BASE is set).
// localstripe's Stripe.js cannot confirm a card payment with a card Element; this gives its
// confirmCardPayment the shape of the real one: the card is tokenised at the fake Stripe,
// our server attaches that token's card to the PaymentIntent and confirms it (as Stripe's
// servers would), and a card that asks for 3-D Secure gets localstripe's own dialog.
(function () {
  "use strict";
  var script = document.currentScript;
  var FakeStripe = window.Stripe;
  if (!FakeStripe || !script) return;
  window.Stripe = function (key, options) {
    var stripe = FakeStripe(key, options);
    var authenticate = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async function (secret, data) {
      var element = data && data.payment_method && data.payment_method.card;
      var token;
      try {
        token = await stripe.createToken(element);
      } catch (e) {
        return { error: { message: document.getElementById("card-form").dataset.incomplete } };
      }
      if (token.error) return { error: token.error };
      var response = await fetch(script.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": script.dataset.csrf },
        body: JSON.stringify({ card: token.token.card.id }),
      });
      var body = await response.json();
      if (body.error) return { error: body.error };
      if (body.status === "requires_action") return authenticate(secret);
      return { paymentIntent: body };
    };
    return stripe;
  };
})();
