"""A real local Stripe for the payment tests: localstripe in a subprocess on 127.0.0.1, and the
Stripe gateway pointed at it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe

from payments.gateway import StripeGateway

SECRET_KEY = "sk_test_12345"
WEBHOOK_SECRET = "whsec_test"
STARTUP_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    request = urllib.request.Request(
        f"{url}/v1/customers?limit=1", headers={"Authorization": f"Bearer {SECRET_KEY}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=0.5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_localstripe(log: Path, webhook_url: str | None = None) -> tuple[subprocess.Popen, str]:
    """localstripe on a free port (demo.fake_stripe: 127.0.0.1, in memory), answering;
    retried when another process took the port. With `webhook_url`, it delivers its events
    there, signed with WEBHOOK_SECRET."""
    webhook = ["--webhook", webhook_url, "--secret", WEBHOOK_SECRET] if webhook_url else []
    for _attempt in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "demo.fake_stripe", "--port", str(port), *webhook],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(url):
                return process, url
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()
            break
    raise RuntimeError(f"localstripe did not start:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory) -> Iterator[str]:
    """The base URL of a fresh, in-memory localstripe for this test session."""
    process, url = start_localstripe(tmp_path_factory.mktemp("localstripe") / "localstripe.log")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def gateway(localstripe_url) -> Iterator[StripeGateway]:
    gateway = StripeGateway(SECRET_KEY, WEBHOOK_SECRET, api_base=localstripe_url)
    try:
        yield gateway
    finally:
        gateway.close()


@pytest.fixture
def stripe_api(localstripe_url) -> Iterator[stripe.StripeClient]:
    """Direct access to localstripe, for what a browser or Stripe's dashboard would do."""
    http = stripe.RequestsClient()
    yield stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe_url}, http_client=http)
    http.close()
