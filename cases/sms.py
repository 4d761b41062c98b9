"""Text messages: the provider interface, and the HTTP provider configured by settings."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Protocol


class TextError(RuntimeError):
    """The provider did not accept a text; the message says why."""


class TextProvider(Protocol):
    def send(self, to: str, body: str) -> str:
        """Hand one text to the provider; return the provider's id for it."""
        ...


class HttpTextProvider:
    """POSTs `{"to": ..., "body": ...}` as JSON to the provider's URL with a bearer key and
    reads `{"id": ...}` back."""

    def __init__(self, url: str, api_key: str, timeout: float = 15):
        if not url:
            raise TextError("SMS_API_URL is not set")
        self.url = url
        self.api_key = api_key
        self.timeout = timeout

    def send(self, to: str, body: str) -> str:
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"to": to, "body": body}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.api_key}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise TextError(f"the SMS provider answered {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise TextError(f"{type(exc).__name__}: {exc}") from None
        provider_id = answer.get("id") if isinstance(answer, dict) else None
        if not provider_id:
            raise TextError("the SMS provider gave no message id")
        return str(provider_id)
