"""Where the Stripe request budget (payments/stripe_budget.py) keeps its buckets: Redis when
REDIS_URL is set, shared by every process and machine on it; otherwise this process's memory
(the embedded default is one process: several processes without Redis would each spend the
whole budget).

In Redis each bucket is a hash (`recourse:stripe:api`, `recourse:stripe:search`) that one Lua
script reads, refills by Redis's own clock and takes from, atomically, as
shell/sign_in_guard.py's counters are. When Redis is away, requests spend from this process's
memory until it is back (logged), rather than stopping payments."""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

from payments.stripe_budget import Bucket, Caller, LocalStore, RequestBudget, Store

log = logging.getLogger(__name__)
PREFIX = "recourse:stripe"
EXPIRE_MS = 60_000  # an idle bucket is full again long before: its key may go

# KEYS[1] the bucket; ARGV rate, capacity, floor. Returns the seconds to wait (0: taken), as a
# string (Redis would cut a Lua number to a whole one). payments.stripe_budget.take in Lua.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local floor = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens - 1 >= floor - 1e-9 then
  tokens = tokens - 1
else
  wait = (floor + 1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return tostring(wait)
"""


class RedisStore:
    """The buckets in Redis, for every process and machine that uses it."""

    def __init__(self, url: str, fallback: LocalStore | None = None) -> None:
        self.url = url
        self._redis = Redis.from_url(url)
        self._script = self._redis.register_script(_TAKE)
        self._fallback = fallback or LocalStore()  # while Redis is away

    def __reduce__(self):
        """Pickled (to a worker process) as its URL: each process has its own connection."""
        return (RedisStore, (self.url,))

    def take(self, bucket: Bucket, caller: Caller) -> float:
        try:
            answer = self._script(
                keys=[bucket.name],
                args=[bucket.rate, bucket.capacity, bucket.floor(caller), EXPIRE_MS],
            )
        except RedisError as exc:
            log.warning("Redis is away (%s): Stripe's request budget kept in memory", exc)
            return self._fallback.take(bucket, caller)
        return float(answer)


def request_budget(config) -> RequestBudget:
    """The app's budget, from STRIPE_MAX_RPS, STRIPE_SEARCH_MAX_RPS and REDIS_URL."""
    url = config["REDIS_URL"]
    store: Store = RedisStore(url) if url else LocalStore()
    return RequestBudget(
        store,
        max_rps=config["STRIPE_MAX_RPS"],
        search_max_rps=config["STRIPE_SEARCH_MAX_RPS"],
        prefix=PREFIX,
    )
