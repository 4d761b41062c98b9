"""PDFs from Jinja templates and plain data, with WeasyPrint fetching only our own assets."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from correspondence import i18n

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
    config = current_app.config
    return {
        "name": config["AGENCY_NAME"],
        "address": config.get(
            "AGENCY_ADDRESS", "100 Main Street, Suite 200, Springfield, IL 62701"
        ),
        "phone": config.get("AGENCY_PHONE", "(800) 555-0199"),
        "hours": config.get("AGENCY_HOURS", "Monday–Friday 8:00 a.m.–8:00 p.m. Eastern"),
        "portal": config.get("PORTAL_URL", "http://127.0.0.1:5000/portal/login"),
    }
