"""PDFs from Jinja templates and plain data, with WeasyPrint fetching only our own assets."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from correspondence import i18n
from shell.settings import DEMO_ADDRESS, DEMO_NOTE

STATIC = Path(__file__).resolve().parents[1] / "static"


class OwnAssetsOnly(URLFetcher):
    """Fetches files under static/ and nothing else: no network, no other local files."""

    def __init__(self):
        super().__init__(allowed_protocols=("file",))

    def fetch(self, url, headers=None):
        prefix = STATIC.resolve().as_uri() + "/"
        if not url.startswith(prefix) or ".." in url:
            raise ValueError(f"PDF rendering may not fetch {url}")
        return super().fetch(url, headers)


def render_pdf(template: str, **context) -> bytes:
    return render_document(template, **context).write_pdf()


def render_document(template: str, **context):
    """The laid-out pages (a WeasyPrint Document), to write alone or bound with others."""
    html = render_template(template, **context)
    return HTML(
        string=html, base_url=STATIC.resolve().as_uri() + "/", url_fetcher=OwnAssetsOnly()
    ).render()


def bind(documents: list) -> bytes:
    """One PDF of several rendered documents' pages, in the order given."""
    pages = [page for document in documents for page in document.pages]
    return documents[0].copy(pages).write_pdf()


def render_letter(template: str, language: str | None, **context) -> bytes:
    """A letter to a debtor, in their language (English unless they chose Spanish)."""
    language = i18n.known(language)
    with force_locale(language):
        return render_pdf(template, lang=language, **context)


def agency_letterhead() -> dict:
    """The agency as every letter, email and text names it (SPEC §10's settings). The demo
    agency's address says plainly that it is not a real agency."""
    config = current_app.config
    address = config["AGENCY_ADDRESS"]
    if address == DEMO_ADDRESS:
        address = f"{address} ({DEMO_NOTE})"
    return {
        "name": config["AGENCY_NAME"],
        "address": address,
        "phone": config["AGENCY_PHONE"],
        "hours": config["AGENCY_HOURS"],
        "portal": config["PORTAL_URL"],
    }
