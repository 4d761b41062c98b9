"""A fake Stripe for the offline demo and the tests: localstripe on 127.0.0.1, in memory.

    python -m demo.fake_stripe --port 8420 --webhook http://127.0.0.1:5000/stripe/webhook

localstripe's own command listens on every interface and pickles its store to a file shared
by every localstripe on the machine; this serves the same app on 127.0.0.1 only, keeps nothing
on disk, and sends its webhooks (signed with --secret) to the app. It serves a fake Stripe.js
at /js.stripe.com/v3/ that pages load instead of Stripe's (STRIPE_JS_URL follows
STRIPE_API_BASE). Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0341 is declined.
"""

from __future__ import annotations

import argparse

DEMO_SECRET_KEY = "sk_test_recourse_demo"
DEMO_PUBLISHABLE_KEY = "pk_test_recourse_demo"
DEMO_WEBHOOK_SECRET = "whsec_recourse_demo"


def serve(port: int, webhook_url: str | None = None, secret: str = DEMO_WEBHOOK_SECRET) -> None:
    from aiohttp import web
    from localstripe import resources, server, webhooks

    resources.Store.dump_to_disk = lambda self: None
    if webhook_url:
        webhooks.register_webhook("recourse", webhook_url, secret, None)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook", help="the app's /stripe/webhook URL")
    parser.add_argument("--secret", default=DEMO_WEBHOOK_SECRET)
    args = parser.parse_args()
    serve(args.port, args.webhook, args.secret)


if __name__ == "__main__":
    main()
