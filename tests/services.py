"""`python -m tests.services PG_URL REDIS_URL`: exit 0 when both answer (used by `make test`)."""

import sys

import psycopg
from redis import Redis


def main(pg_url: str, redis_url: str) -> int:
    server_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(server_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - report, don't raise
        print(f"not available: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
