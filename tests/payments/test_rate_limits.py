"""The shared Stripe request budget and Stripe's 429s: the bucket's arithmetic and priorities
(in memory and in Redis), the gateway spending it, and 429s (from bench/fault_proxy.py in front
of localstripe) sent again without anything made twice."""

from __future__ import annotations

import time
import uuid

import pytest

from bench.fault_proxy import FaultProxy
from payments.gateway import GatewayError, StripeGateway
from payments.stripe_budget import (
    Bucket,
    Caller,
    LocalStore,
    RequestBudget,
    backoff_seconds,
    default_max_rps,
    should_retry_rate_limit,
)
from shell.stripe_buckets import RedisStore, request_budget
from tests.payments.conftest import SECRET_KEY, WEBHOOK_SECRET


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def taken(store, bucket: Bucket, caller: Caller) -> int:
    """Tokens `caller` gets from the bucket at once, without waiting."""
    n = 0
    while store.take(bucket, caller) == 0:
        n += 1
        assert n < 1000
    return n


def test_the_budget_defaults_by_the_keys_mode():
    assert default_max_rps("sk_live_abc") == 80
    assert default_max_rps("rk_live_abc") == 80
    assert default_max_rps("sk_test_abc") == 20
    assert default_max_rps("") == 20


def test_lower_priorities_leave_the_bucket_to_the_portal():
    clock, bucket = Clock(), Bucket("t", 40)  # a bucket of 10 tokens
    store = LocalStore(clock)
    assert taken(store, bucket, Caller.AUTOPAY) == 5  # leaves half
    assert taken(store, bucket, Caller.WEBHOOK) == 2  # leaves at least a quarter (2.5)
    assert taken(store, bucket, Caller.PORTAL) == 3  # the rest
    wait = store.take(bucket, Caller.AUTOPAY)
    assert wait == pytest.approx((5 + 1) / 40)
    clock.now += wait
    assert store.take(bucket, Caller.AUTOPAY) == 0  # refilled at the rate


def test_a_full_bucket_never_holds_more_than_a_quarter_second():
    clock, bucket = Clock(), Bucket("t", 40)
    store = LocalStore(clock)
    taken(store, bucket, Caller.PORTAL)
    clock.now += 3600  # an idle hour
    assert taken(store, bucket, Caller.PORTAL) == 10


def test_the_redis_bucket_does_the_same_arithmetic(redis_url):
    if not redis_url:
        pytest.skip("needs Redis (TEST_REDIS_URL)")
    bucket = Bucket(f"test:{uuid.uuid4().hex}", 4)  # 2 tokens, refilling slowly
    store = RedisStore(redis_url)
    assert taken(store, bucket, Caller.AUTOPAY) == 1
    assert taken(store, bucket, Caller.PORTAL) == 1
    wait = store.take(bucket, Caller.PORTAL)
    assert 0 < wait <= 1 / 4


def test_redis_away_spends_from_memory(caplog):
    store = RedisStore("redis://127.0.0.1:1/0", LocalStore(Clock()))  # nothing listens there
    bucket = Bucket("t", 40)
    assert taken(store, bucket, Caller.PORTAL) == 10
    assert "Stripe's request budget kept in memory" in caplog.text


def test_the_app_keeps_the_budget_in_redis_when_it_has_redis():
    config = {"REDIS_URL": "", "STRIPE_MAX_RPS": 20, "STRIPE_SEARCH_MAX_RPS": 15}
    assert isinstance(request_budget(config).store, LocalStore)
    with_redis = request_budget({**config, "REDIS_URL": "redis://127.0.0.1:6379/7"})
    assert isinstance(with_redis.store, RedisStore)


def test_a_search_spends_from_both_buckets():
    clock = Clock()
    budget = RequestBudget(LocalStore(clock), max_rps=40, search_max_rps=8, sleep=_no_sleep)
    for _ in range(2):  # the search bucket's 2 tokens
        assert budget.spend(Caller.PORTAL, search=True) == 0
    assert budget.spend(Caller.PORTAL) == 0  # the request bucket had 10: 7 left
    with pytest.raises(_Slept):
        budget.spend(Caller.PORTAL, search=True)


class _Slept(Exception):
    pass


def _no_sleep(seconds: float) -> None:
    raise _Slept(seconds)


def test_worker_processes_share_a_budget_in_memory():
    budget = RequestBudget(LocalStore(), max_rps=40, search_max_rps=16)
    shared = budget.shared_by(4)
    assert (shared.max_rps, shared.search_max_rps) == (10, 4)
    redis_budget = RequestBudget(RedisStore("redis://127.0.0.1:6379/7"), max_rps=40)
    assert redis_budget.shared_by(4) is redis_budget  # one budget in Redis for all


def test_429_is_retried_unless_stripe_says_not_to():
    assert should_retry_rate_limit(429, {"Stripe-Should-Retry": "true"})
    assert should_retry_rate_limit(429, {})
    assert not should_retry_rate_limit(429, {"Stripe-Should-Retry": "false"})
    assert not should_retry_rate_limit(500, {"Stripe-Should-Retry": "true"})
    assert [backoff_seconds(n, 1.0) for n in (1, 2, 3, 6, 9)] == [0.25, 0.5, 1.0, 4.0, 4.0]
    assert backoff_seconds(2, 0.5) == 0.25


@pytest.fixture
def fault_proxy(localstripe_url):
    proxies = []

    def make(**options) -> FaultProxy:
        proxy = FaultProxy(localstripe_url, **options).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def behind(fault_proxy):
    """Gateways to localstripe through a fault proxy (closed after the test)."""
    gateways = []

    def make(proxy: FaultProxy, **options) -> StripeGateway:
        gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=proxy.url, **options)
        gateways.append(gateway)
        return gateway

    yield make
    for gateway in gateways:
        gateway.close()


def test_payments_made_through_429s_are_made_once(fault_proxy, behind, gateway):
    proxy = fault_proxy(share_429=0.4)
    through = behind(proxy)
    reference = f"RC-L{uuid.uuid4().hex[:10].upper()}"
    made = [
        through.create_payment_intent(
            amount_cents=1_000 + n, case_reference=reference, idempotency_key=f"k{n}"
        )
        for n in range(12)
    ]
    assert proxy.rate_limited > 0  # some were turned away, and sent again
    found = gateway.find_payment_intents(case_reference=reference)
    assert sorted(i.id for i in found) == sorted(i.id for i in made)
    assert sorted(i.metadata["idempotency_key"] for i in found) == sorted(
        f"k{n}" for n in range(12)
    )


def test_a_429_stripe_says_not_to_retry_is_an_error_to_try_later(fault_proxy, behind):
    proxy = fault_proxy(share_429=1.0, should_retry="false")
    with pytest.raises(GatewayError) as caught:
        behind(proxy).retrieve_payment_intent("pi_nothing")
    assert (caught.value.http_status, caught.value.retryable) == (429, True)
    assert proxy.rate_limited == 1  # asked once, not again


def test_the_gateway_keeps_to_its_budget(fault_proxy, behind):
    proxy = fault_proxy()
    budget = RequestBudget(LocalStore(), max_rps=10)
    autopay = behind(proxy, budget=budget).for_caller(Caller.AUTOPAY)
    assert (autopay.caller, autopay.budget) == (Caller.AUTOPAY, budget)
    started = time.monotonic()
    for _ in range(25):
        autopay.ensure_customer(debtor_id=424242, name="Budget Test", email=None)
    elapsed = time.monotonic() - started
    requests = len(proxy.forwarded)
    assert requests >= 25
    # A bucket of 2.5 tokens, of which autopay may take half, then 10 a second.
    assert elapsed >= (requests - 2) / 10
    assert proxy.peak_rate(1.0) <= 10 * 1.25
