"""Setting up a plan in the portal as the debtor does it: the terms, then the schedule shown,
confirmed."""

from __future__ import annotations

import re

from tests.conftest import csrf_from


def review_plan(client, url: str, data: dict):
    """The first step: the terms posted; the review page (or the refusal)."""
    return client.post(url, data={**data, "csrf_token": csrf_from(client.get(url))})


def confirm_plan(client, url: str, data: dict):
    """Both steps: the review page's schedule confirmed as it was shown (or the refusal)."""
    review = review_plan(client, url, data)
    if review.status_code != 200:
        return review
    page = review.get_data(as_text=True)
    shown = re.search(r'name="shown" value="([^"]*)"', page).group(1)
    return client.post(
        url, data={**data, "csrf_token": csrf_from(review), "action": "confirm", "shown": shown}
    )
