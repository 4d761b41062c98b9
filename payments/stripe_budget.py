"""One request budget for every call to Stripe: a token bucket shared by the portal, the
webhooks and autopay, across threads, worker processes and machines.

Stripe allows about 100 requests/s in live mode, 25 in test mode and about 20 for the Search
API; past that it answers 429. The budget spends below those limits: `STRIPE_MAX_RPS`
(default 80 with a live key, 20 with a test key) for every request, and
`STRIPE_SEARCH_MAX_RPS` (default 15) more for each Search API request.

A bucket holds at most a quarter of a second's tokens (so no second sees more than 1.25 times
the rate) and refills at the rate. Callers come in order of priority: the debtor in the portal
may take the bucket's last token; a webhook only while more than a quarter of the bucket is
left, autopay only while more than half is: a charge run that spends all it may still leaves
the portal room to answer at once.

This module is the arithmetic and the waiting; where the buckets live is a `Store`: here one
process's memory (`LocalStore`), or Redis for all processes and machines
(shell/stripe_buckets.py, a Lua script doing the same arithmetic atomically).
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

LIVE_MAX_RPS = 80  # Stripe's live-mode limit is 100 requests/s
TEST_MAX_RPS = 20  # ... and its test mode's 25
SEARCH_MAX_RPS = 15  # ... and its Search API's about 20
BURST_SECONDS = 0.25  # a full bucket: this many seconds of requests at once
_EPSILON = 1e-9  # the refill's rounding: a wait of exactly what was asked is enough


class Caller(enum.IntEnum):
    """Who is calling Stripe, most urgent first."""

    PORTAL = 0  # a person waiting for the page: the portal, staff screens, the CLI
    WEBHOOK = 1
    AUTOPAY = 2


# The share of a full bucket each caller leaves for the ones before it.
RESERVE = {Caller.PORTAL: 0.0, Caller.WEBHOOK: 0.25, Caller.AUTOPAY: 0.5}


def default_max_rps(secret_key: str) -> int:
    """STRIPE_MAX_RPS's default: by the key's mode (a live key's or a test key's limit)."""
    return LIVE_MAX_RPS if secret_key.startswith(("sk_live", "rk_live")) else TEST_MAX_RPS


@dataclass(frozen=True)
class Bucket:
    """One limit: `name` keys its state in the store."""

    name: str
    rate: float  # tokens a second

    @property
    def capacity(self) -> float:
        # At least two tokens, so that autopay's reserve still leaves it one.
        return max(self.rate * BURST_SECONDS, 2.0)

    def floor(self, caller: Caller) -> float:
        """The tokens `caller` must leave in the bucket."""
        return self.capacity * RESERVE[caller]


@dataclass
class BucketState:
    tokens: float
    at: float  # seconds, on the store's clock


def take(
    state: BucketState | None, bucket: Bucket, caller: Caller, now: float
) -> tuple[BucketState, float]:
    """One token for `caller` at time `now`: the bucket's new state and 0, or its state unchanged
    but refilled and how long to wait before asking again. (shell/stripe_buckets.py's Lua script
    is this function, in Redis.)"""
    if state is None:
        state = BucketState(bucket.capacity, now)
    tokens = min(bucket.capacity, state.tokens + max(0.0, now - state.at) * bucket.rate)
    floor = bucket.floor(caller)
    if tokens - 1 >= floor - _EPSILON:
        return BucketState(tokens - 1, now), 0.0
    return BucketState(tokens, now), (floor + 1 - tokens) / bucket.rate


class Store(Protocol):
    def take(self, bucket: Bucket, caller: Caller) -> float:
        """Take one token (0 returned) or say how many seconds to wait before asking again."""
        ...


class LocalStore:
    """The buckets in this process's memory, shared by its threads: the embedded default (one
    process). Several processes each with their own would together spend more than the budget;
    they share Redis instead."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, BucketState] = {}

    def take(self, bucket: Bucket, caller: Caller) -> float:
        with self._lock:
            state, wait = take(self._states.get(bucket.name), bucket, caller, self._clock())
            self._states[bucket.name] = state
            return wait

    def __reduce__(self):
        """Pickled (to a worker process) as a new, full store: memory is not shared."""
        return (LocalStore, ())


class RequestBudget:
    """The budget every request to Stripe spends from: `spend` waits until it may be sent."""

    def __init__(
        self,
        store: Store,
        *,
        max_rps: float,
        search_max_rps: float = SEARCH_MAX_RPS,
        prefix: str = "stripe",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_rps <= 0 or search_max_rps <= 0:
            raise ValueError("request rates must be above 0")
        self.store = store
        self.max_rps = max_rps
        self.search_max_rps = search_max_rps
        self.prefix = prefix
        self._sleep = sleep
        self._api = Bucket(f"{prefix}:api", max_rps)
        self._search = Bucket(f"{prefix}:search", search_max_rps)

    def __reduce__(self):
        return (
            _budget_from,
            (self.store, self.max_rps, self.search_max_rps, self.prefix),
        )

    def shared_by(self, processes: int) -> RequestBudget:
        """This budget for each of `processes` processes that cannot share its store (memory):
        each gets its part of the rate. A shared store (Redis) is shared whole."""
        if processes <= 1 or not isinstance(self.store, LocalStore):
            return self
        return RequestBudget(
            LocalStore(),
            max_rps=self.max_rps / processes,
            search_max_rps=self.search_max_rps / processes,
            prefix=self.prefix,
            sleep=self._sleep,
        )

    def spend(self, caller: Caller, *, search: bool = False) -> float:
        """Wait for a token of the request budget (and of the search budget, for a Search API
        request); the seconds waited."""
        waited = 0.0
        for bucket in (self._search, self._api) if search else (self._api,):
            while (wait := self.store.take(bucket, caller)) > 0:
                wait = min(max(wait, 0.001), 1.0)
                self._sleep(wait)
                waited += wait
        return waited


def _budget_from(store: Store, max_rps: float, search_max_rps: float, prefix: str):
    return RequestBudget(store, max_rps=max_rps, search_max_rps=search_max_rps, prefix=prefix)


# -- Stripe's 429s ----------------------------------------------------------------------------

RATE_LIMIT_RETRIES = 8
_FIRST_DELAY = 0.25
_MAX_DELAY = 4.0


def should_retry_rate_limit(status: int, headers) -> bool:
    """A 429 is tried again unless Stripe says not to (`Stripe-Should-Retry: false`). A 429
    is a request Stripe's rate limiter turned away before doing anything; and real Stripe
    honours our idempotency keys besides. `Retry-After` is not read: Stripe does not promise it."""
    if status != 429:
        return False
    return (headers.get("Stripe-Should-Retry") or "").lower() != "false"


def backoff_seconds(retry: int, jitter: float) -> float:
    """How long to wait before retry number `retry` (1, 2, ...): doubling from 0.25 s up to 4 s,
    each scaled by `jitter` in [0.5, 1] so that callers turned away together spread out."""
    return min(_FIRST_DELAY * math.pow(2, retry - 1), _MAX_DELAY) * jitter
