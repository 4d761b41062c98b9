"""The payment provider behind an interface: Stripe through `stripe.StripeClient`, nothing global.

Pure of Flask: `create_app` builds a `StripeGateway` from settings and hands it to the services.

Never charge twice. Every create call carries an idempotency key, which real Stripe honours for
24 hours; a fake Stripe server (localstripe) ignores it, so callers also reconcile with
`find_payment_intents(case_reference=..., idempotency_key=...)` before charging again: every
PaymentIntent made here carries `case_reference` and `idempotency_key` in its metadata.

Every request spends from one shared budget (payments/stripe_budget.py) as the caller it was
made for (`for_caller`: the portal first, then webhooks, then autopay), and a 429 is sent
again after a backoff unless Stripe says not to (`Stripe-Should-Retry: false`). A 429 is a
request Stripe's rate limiter turned away before doing anything, so sending it again charges
nothing twice, even on a fake server that ignores idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
import stripe

from payments.stripe_budget import (
    RATE_LIMIT_RETRIES,
    Caller,
    RequestBudget,
    backoff_seconds,
    should_retry_rate_limit,
)

CURRENCY = "usd"
WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe says search results can trail writes by up to an hour during outages; listing the
# last hour alongside a search covers what the search cannot see yet.
_SEARCH_LAG = dt.timedelta(hours=1)
_PAGE = 100
log = logging.getLogger(__name__)


class GatewayError(Exception):
    """Stripe refused, or could not be reached. `str(error)` is fit to show a person.

    `retryable` is true when trying the same request again later may succeed (network, Stripe
    unavailable, rate limit); a caller that created something must reconcile before retrying.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retryable = retryable


class WebhookSignatureError(ValueError):
    """The request is not a verifiably genuine, recent Stripe event: missing, malformed,
    tampered or stale signature, or a signed body that is not a JSON event."""


@dataclass(frozen=True)
class PaymentIntentInfo:
    id: str
    status: str
    amount_cents: int
    amount_received_cents: int
    currency: str
    client_secret: str | None
    metadata: dict[str, str]
    customer_id: str | None
    payment_method_id: str | None
    last_error_code: str | None
    created: dt.datetime
    latest_charge_id: str | None
    last_error_message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def needs_authentication(self) -> bool:
        """The debtor must come back on-session to authenticate (3-D Secure). localstripe leaves
        an off-session intent in `requires_action`; real Stripe fails it with
        `authentication_required` and status `requires_payment_method`."""
        return self.status == "requires_action" or self.last_error_code == "authentication_required"


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    client_secret: str | None
    status: str
    payment_method_id: str | None


@dataclass(frozen=True)
class RefundInfo:
    id: str
    status: str
    amount_cents: int
    payment_intent_id: str | None


class PaymentGateway(Protocol):
    def ensure_customer(self, *, debtor_id: int, name: str, email: str | None) -> str: ...

    def create_payment_intent(
        self,
        *,
        amount_cents: int,
        case_reference: str,
        idempotency_key: str,
        customer_id: str | None = None,
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        statement_suffix: str = "",
    ) -> PaymentIntentInfo: ...

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntentInfo: ...

    def find_payment_intents(
        self, *, case_reference: str, idempotency_key: str | None = None
    ) -> list[PaymentIntentInfo]: ...

    def create_setup_intent(self, *, customer_id: str, idempotency_key: str) -> SetupIntentInfo: ...

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentInfo: ...

    def charge_off_session(
        self,
        *,
        amount_cents: int,
        customer_id: str,
        payment_method_id: str,
        case_reference: str,
        idempotency_key: str,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntentInfo: ...

    def refund(
        self, *, payment_intent_id: str, amount_cents: int | None, idempotency_key: str
    ) -> RefundInfo: ...

    def construct_event(self, payload: bytes, signature_header: str | None) -> dict[str, Any]: ...

    def for_caller(self, caller: Caller) -> PaymentGateway:
        """This gateway, its requests spending the shared budget as `caller`."""
        ...

    def shared_by(self, processes: int) -> PaymentGateway:
        """This gateway for each of `processes` worker processes, which share its budget."""
        ...


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A valid `Stripe-Signature` header for `payload`, as Stripe signs webhooks (tests, bench)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), b"%d." % t + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _gateway_from(
    cls,
    secret_key,
    webhook_secret,
    api_base,
    retries,
    timeout,
    real_stripe=None,
    budget=None,
    caller=Caller.PORTAL,
) -> StripeGateway:
    return cls(
        secret_key,
        webhook_secret,
        api_base,
        max_network_retries=retries,
        timeout_seconds=timeout,
        real_stripe=real_stripe,
        budget=budget,
        caller=caller,
    )


DESCRIPTOR_LIMIT = 22  # Stripe: prefix, "* " and suffix together
LONGEST_PREFIX = 10  # Stripe's shortened descriptor (the prefix) is 2 to 10 characters
_DESCRIPTOR_REFUSED = re.compile(r"""[<>\\'"*]""")


def statement_suffix(name: str, prefix: str = "") -> str:
    """The client's name as a statement descriptor suffix, within Stripe's rules: Latin
    characters only, none of < > \\ ' " *, at least one letter, and at most 22 characters with
    the account's prefix and the "* " between them (an unknown prefix: the longest, 10). "" when
    nothing of the name is left (then no suffix is sent)."""
    room = DESCRIPTOR_LIMIT - 2 - (len(prefix.strip()) or LONGEST_PREFIX)
    latin = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = " ".join(_DESCRIPTOR_REFUSED.sub("", latin).split())
    cleaned = "".join(ch for ch in cleaned if ch.isprintable())[: max(room, 0)].strip()
    return cleaned if any(ch.isalpha() for ch in cleaned) else ""


class _RequestsClient(stripe.RequestsClient):
    """Stripe's HTTP client (a `requests` session per thread), with the environment's proxy
    settings read once, here: left to itself, `requests` reads them from the environment on
    every request, a tenth of an autopay charge's CPU.

    Each request (each page of a listing, each retry) first spends a token of the budget as
    `caller`; a 429 is sent again after a backoff, up to RATE_LIMIT_RETRIES times, unless
    Stripe says not to."""

    def __init__(
        self,
        api_base: str,
        timeout_seconds: float,
        budget: RequestBudget | None = None,
        caller: Caller = Caller.PORTAL,
    ) -> None:
        proxies = requests.utils.get_environ_proxies(api_base)
        super().__init__(timeout=timeout_seconds, proxy=proxies or None)
        self._budget = budget
        self._caller = caller

    def _request_internal(self, method, url, headers, post_data, is_streaming):
        if getattr(self._thread_local, "session", None) is None:
            session = requests.Session()
            session.trust_env = False  # proxies as read above; certificates are Stripe's own
            self._thread_local.session = session
        search = urlsplit(url).path.endswith("/search")
        retry = 0
        while True:
            if self._budget is not None:
                self._budget.spend(self._caller, search=search)
            response = super()._request_internal(method, url, headers, post_data, is_streaming)
            _content, status, answer_headers = response
            if retry >= RATE_LIMIT_RETRIES or not should_retry_rate_limit(status, answer_headers):
                return response
            retry += 1
            wait = backoff_seconds(retry, random.uniform(0.5, 1.0))
            path = urlsplit(url).path  # not its query: search queries name cases
            log.info("Stripe answered 429 to %s %s: retry %d in %.2f s", method, path, retry, wait)
            time.sleep(wait)


_T = TypeVar("_T")


class StripeGateway:
    """`PaymentGateway` on Stripe's API, or on a fake Stripe server at `api_base`."""

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        *,
        max_network_retries: int | None = None,
        timeout_seconds: float = 30.0,
        real_stripe: bool | None = None,
        budget: RequestBudget | None = None,
        caller: Caller = Caller.PORTAL,
    ) -> None:
        """`budget`: the shared request budget its requests spend as `caller` (create_app
        always gives one; without one, as in tests and tools, requests are not limited).
        `real_stripe`: whether the server is Stripe's own, which takes what localstripe refuses
        (a statement descriptor suffix); None: Stripe's own unless `api_base` is given (a test
        puts a proxy to localstripe in front and says True)."""
        # Retries reuse the idempotency key, which only real Stripe honours; a fake server would
        # make a second object. None: 2 against Stripe, 0 against a custom `api_base`.
        if max_network_retries is None:
            max_network_retries = 0 if api_base else 2
        self._settings = (
            secret_key,
            webhook_secret,
            api_base,
            max_network_retries,
            timeout_seconds,
            real_stripe,
        )
        self.api_base = api_base
        self.real_stripe = api_base is None if real_stripe is None else real_stripe
        self.budget = budget
        self.caller = caller
        self._callers: dict[Caller, StripeGateway] = {caller: self}
        self._webhook_secret = webhook_secret
        self._http = _RequestsClient(
            api_base or stripe.DEFAULT_API_BASE, timeout_seconds, budget, caller
        )
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def __repr__(self) -> str:
        return f"StripeGateway(api_base={self.api_base!r})"

    def __reduce__(self):
        """Pickled as its settings (for autopay's worker processes): each copy has its own
        HTTP connections."""
        return (_gateway_from, (type(self), *self._settings, self.budget, self.caller))

    def for_caller(self, caller: Caller) -> StripeGateway:
        """This gateway (its settings and budget), its requests spending as `caller`."""
        if self.budget is None:
            return self
        if caller not in self._callers:
            self._callers[caller] = _gateway_from(type(self), *self._settings, self.budget, caller)
        return self._callers[caller]

    def shared_by(self, processes: int) -> StripeGateway:
        """This gateway for each of `processes` worker processes: with a budget in memory, each
        spends its part of the rate (RequestBudget.shared_by)."""
        if self.budget is None:
            return self
        budget = self.budget.shared_by(processes)
        if budget is self.budget:
            return self
        return _gateway_from(type(self), *self._settings, budget, self.caller)

    def close(self) -> None:
        """Close this thread's pooled HTTP connection (tests; long-lived workers need not)."""
        self._http.close()

    # -- customers -------------------------------------------------------------------------

    def ensure_customer(self, *, debtor_id: int, name: str, email: str | None) -> str:
        """The Stripe customer for this debtor (metadata `debtor_id`), made once and kept up to
        date with the name and email given."""
        key = str(debtor_id)
        found = self._call(
            lambda: self._search_or_scan(
                self._client.v1.customers,
                query=f"metadata['debtor_id']:'{_quote(key)}'",
                wanted=lambda c: (c.get("metadata") or {}).get("debtor_id") == key,
            )
        )
        if found:
            customer = min(found, key=lambda c: (c.get("created") or 0, c["id"]))
            changes = {
                k: v
                for k, v in (("name", name), ("email", email))
                if v is not None and customer.get(k) != v
            }
            if changes:
                self._call(lambda: self._client.v1.customers.update(customer["id"], params=changes))
            return customer["id"]
        params: dict[str, Any] = {"name": name, "metadata": {"debtor_id": key}}
        if email:
            params["email"] = email
        created = self._call(
            lambda: self._client.v1.customers.create(
                params=params, options={"idempotency_key": f"customer-{debtor_id}"}
            )
        )
        return created.id

    # -- payment intents -------------------------------------------------------------------

    def create_payment_intent(
        self,
        *,
        amount_cents: int,
        case_reference: str,
        idempotency_key: str,
        customer_id: str | None = None,
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        statement_suffix: str = "",
    ) -> PaymentIntentInfo:
        """A card PaymentIntent for the browser to confirm with Stripe.js (its client_secret).

        The description goes into metadata: localstripe refuses a top-level `description`.
        `statement_suffix` (see `statement_suffix()`) goes to Stripe's own servers only:
        localstripe refuses `statement_descriptor_suffix`."""
        _check_amount(amount_cents)
        meta = _metadata(metadata, case_reference, idempotency_key)
        if description:
            meta["description"] = description
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": CURRENCY,
            "payment_method_types": ["card"],
            "metadata": meta,
        }
        if customer_id:
            params["customer"] = customer_id
        if statement_suffix and self.real_stripe:
            params["statement_descriptor_suffix"] = statement_suffix
        intent = self._call(
            lambda: self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        )
        return _intent_info(intent.to_dict())

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntentInfo:
        intent = self._call(lambda: self._client.v1.payment_intents.retrieve(intent_id))
        return _intent_info(intent.to_dict())

    def find_payment_intents(
        self, *, case_reference: str, idempotency_key: str | None = None
    ) -> list[PaymentIntentInfo]:
        """Every PaymentIntent whose metadata names this case (and this attempt, when
        `idempotency_key` is given), oldest first (Stripe's `created` is in whole seconds).

        Stripe: the Search API plus a listing of the last hour, which search may not show yet.
        A server without the Search API (localstripe answers 404): every PaymentIntent, listed
        page by page, filtered here."""

        def wanted(intent: dict[str, Any]) -> bool:
            meta = intent.get("metadata") or {}
            return meta.get("case_reference") == case_reference and (
                idempotency_key is None or meta.get("idempotency_key") == idempotency_key
            )

        query = f"metadata['case_reference']:'{_quote(case_reference)}'"
        if idempotency_key is not None:
            query += f" AND metadata['idempotency_key']:'{_quote(idempotency_key)}'"
        found = self._call(
            lambda: self._search_or_scan(
                self._client.v1.payment_intents, query=query, wanted=wanted
            )
        )
        infos = [_intent_info(i) for i in found]
        return sorted(infos, key=lambda i: i.created)

    def confirm_with_browser_card(self, intent_id: str, card_id: str) -> PaymentIntentInfo:
        """Against a fake Stripe server only: what Stripe's own servers do when Stripe.js
        confirms a card payment. localstripe's Stripe.js tokenises the card in the browser but
        cannot confirm with it, so the browser hands us the token's card id (never the card)
        and this attaches it and confirms. A decline comes back as an intent with its error."""
        if not self.api_base:
            raise GatewayError("Real Stripe confirms card payments in the browser.")
        self._call(
            lambda: self._client.v1.payment_intents.update(
                intent_id, params={"payment_method": card_id}
            )
        )
        try:
            intent = self._client.v1.payment_intents.confirm(intent_id)
        except stripe.CardError as e:
            failed = self._failed_intent(e)
            if failed is None:
                raise _gateway_error(e) from e
            return failed
        except stripe.StripeError as e:
            raise _gateway_error(e) from e
        return _intent_info(intent.to_dict())

    # -- saved cards and autopay -----------------------------------------------------------

    def create_setup_intent(self, *, customer_id: str, idempotency_key: str) -> SetupIntentInfo:
        """A SetupIntent for the browser's `confirmCardSetup`, saving a card for autopay."""
        setup = self._call(
            lambda: self._client.v1.setup_intents.create(
                params={
                    "customer": customer_id,
                    "usage": "off_session",
                    "payment_method_types": ["card"],
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        return _setup_info(setup.to_dict())

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentInfo:
        """Read back a SetupIntent after the browser confirmed it: its saved payment method."""
        setup = self._call(lambda: self._client.v1.setup_intents.retrieve(setup_intent_id))
        return _setup_info(setup.to_dict())

    def charge_off_session(
        self,
        *,
        amount_cents: int,
        customer_id: str,
        payment_method_id: str,
        case_reference: str,
        idempotency_key: str,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntentInfo:
        """Charge a saved card with the debtor away (autopay installments).

        A decline is an answer, not an error: the intent comes back with status
        `requires_payment_method` and `last_error_code` (e.g. `card_declined`). A card that
        needs 3-D Secure comes back with `needs_authentication` true."""
        _check_amount(amount_cents)
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": CURRENCY,
            "payment_method_types": ["card"],
            "customer": customer_id,
            "payment_method": payment_method_id,
            "off_session": True,
            "confirm": True,
            "metadata": _metadata(metadata, case_reference, idempotency_key),
        }
        try:
            # Raw: the answer's JSON as it is, not built into a StripeObject and taken apart
            # again (a tenth of an autopay charge's CPU). Errors are raised all the same.
            answer = self._client.raw_request(
                "post", "/v1/payment_intents", idempotency_key=idempotency_key, **params
            )
        except stripe.CardError as e:
            failed = self._failed_intent(e)
            if failed is None:
                raise _gateway_error(e) from e
            return failed
        except stripe.StripeError as e:
            raise _gateway_error(e) from e
        return _intent_info(answer.data)

    def _failed_intent(self, e: stripe.CardError) -> PaymentIntentInfo | None:
        """The PaymentIntent a declined confirmation left behind. Stripe puts it in the error;
        localstripe names only the charge, whose `payment_intent` leads to it."""
        error = e.error.to_dict() if e.error is not None else {}
        if error.get("payment_intent"):
            return _intent_info(error["payment_intent"])
        if error.get("charge"):
            charge = self._call(lambda: self._client.v1.charges.retrieve(error["charge"]))
            intent_id = _id_of(charge.to_dict().get("payment_intent"))
            if intent_id:
                return self.retrieve_payment_intent(intent_id)
        return None

    # -- refunds ---------------------------------------------------------------------------

    def refund(
        self, *, payment_intent_id: str, amount_cents: int | None, idempotency_key: str
    ) -> RefundInfo:
        """Refund all (`amount_cents=None`) or part of a succeeded payment."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id}
        if amount_cents is not None:
            _check_amount(amount_cents)
            params["amount"] = amount_cents
        refund = self._call(
            lambda: self._client.v1.refunds.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        ).to_dict()
        return RefundInfo(
            id=refund["id"],
            status=refund.get("status") or "",
            amount_cents=int(refund["amount"]),
            payment_intent_id=_id_of(refund.get("payment_intent")) or payment_intent_id,
        )

    # -- webhooks --------------------------------------------------------------------------

    def construct_event(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event in a webhook request, once its signature is checked against the webhook
        secret and found no older than 300 s."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, self._webhook_secret, WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as e:
            raise WebhookSignatureError(e.user_message or "invalid Stripe signature") from e
        except (ValueError, TypeError) as e:  # undecodable body or header
            raise WebhookSignatureError(f"unreadable webhook request: {e}") from e
        try:
            event = json.loads(payload)
        except ValueError as e:
            raise WebhookSignatureError("the signed payload is not JSON") from e
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            raise WebhookSignatureError("the signed payload is not a Stripe event")
        return event

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, request: Callable[[], _T]) -> _T:
        try:
            return request()
        except stripe.StripeError as e:
            raise _gateway_error(e) from e

    def _search_or_scan(
        self, service: Any, *, query: str, wanted: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        """Objects matching `wanted`: by the Search API, and the last hour's listing; or, where
        the Search API is missing, by listing every object."""
        try:
            hits = list(_pages(service.search(params={"query": query, "limit": _PAGE})))
        except stripe.InvalidRequestError:
            scanned = _pages(service.list(params={"limit": _PAGE}))
            return [o for o in scanned if wanted(o)]
        since = int((dt.datetime.now(dt.UTC) - _SEARCH_LAG).timestamp())
        recent = _pages(service.list(params={"limit": _PAGE, "created": {"gte": since}}))
        found = {o["id"]: o for o in [*hits, *recent] if wanted(o)}
        return list(found.values())


def _pages(first_page: Any) -> Iterable[dict[str, Any]]:
    for obj in first_page.auto_paging_iter():
        yield obj.to_dict()


def _quote(value: str) -> str:
    """A value for a Stripe search query's single-quoted string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _check_amount(amount_cents: int) -> None:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ValueError(f"amount must be a positive whole number of cents, not {amount_cents!r}")


def _metadata(
    extra: Mapping[str, str] | None, case_reference: str, idempotency_key: str
) -> dict[str, str]:
    meta = {str(k): str(v) for k, v in (extra or {}).items()}
    meta["case_reference"] = case_reference
    meta["idempotency_key"] = idempotency_key
    return meta


def _id_of(value: Any) -> str | None:
    """An id from a field that is an id, or an expanded object (localstripe expands some)."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def payment_intent_from(intent: dict[str, Any]) -> PaymentIntentInfo:
    """A PaymentIntent as Stripe's JSON has it (e.g. a verified webhook event's object)."""
    return _intent_info(intent)


def _intent_info(intent: dict[str, Any]) -> PaymentIntentInfo:
    status = intent["status"]
    amount = int(intent["amount"])
    received = intent.get("amount_received")
    if received is None:  # localstripe has no amount_received; it only captures in full
        received = amount if status == "succeeded" else 0
    error = intent.get("last_payment_error") or {}
    return PaymentIntentInfo(
        id=intent["id"],
        status=status,
        amount_cents=amount,
        amount_received_cents=int(received),
        currency=intent.get("currency") or CURRENCY,
        client_secret=intent.get("client_secret"),
        metadata=dict(intent.get("metadata") or {}),
        customer_id=_id_of(intent.get("customer")),
        payment_method_id=_id_of(intent.get("payment_method")),
        last_error_code=error.get("code"),
        created=dt.datetime.fromtimestamp(int(intent["created"]), dt.UTC),
        latest_charge_id=_id_of(intent.get("latest_charge")),
        last_error_message=error.get("message"),
    )


def _setup_info(setup: dict[str, Any]) -> SetupIntentInfo:
    return SetupIntentInfo(
        id=setup["id"],
        client_secret=setup.get("client_secret"),
        status=setup["status"],
        payment_method_id=_id_of(setup.get("payment_method")),
    )


def _gateway_error(e: stripe.StripeError) -> GatewayError:
    """A message a collector or debtor can act on; Stripe's own text where it is meant for them.
    What a connection failure says about our network (hosts, ports, exceptions) goes to the log,
    never to the person."""
    detail = e.user_message or "no details given"
    status = e.http_status
    if isinstance(e, stripe.CardError):
        message, retryable = detail, False
    elif isinstance(e, stripe.APIConnectionError):
        log.warning("Stripe unreachable: %s", e)
        message, retryable = "Could not reach Stripe; try again in a few minutes.", True
    elif isinstance(e, stripe.RateLimitError):
        message, retryable = "Stripe is busy; try again shortly.", True
    elif isinstance(e, stripe.AuthenticationError | stripe.PermissionError):
        message, retryable = f"Stripe refused our API key: {detail}", False
    elif isinstance(e, stripe.IdempotencyError):
        message, retryable = f"Stripe saw this request before with other details: {detail}", False
    elif isinstance(e, stripe.InvalidRequestError):
        message, retryable = f"Stripe refused the request: {detail}", False
    else:
        log.warning("Stripe failed (%s): %s", status, e)
        message, retryable = (
            "Stripe failed; try again in a few minutes.",
            status is None or (status >= 500),
        )
    return GatewayError(message, code=e.code, http_status=status, retryable=retryable)
