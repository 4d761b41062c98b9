"""English and Spanish for the portal and the debtor's emails (Flask-Babel).

Staff and client pages stay in English. On portal pages the language is the one the debtor
chose (kept in the session and on the debtor), else the browser's preference, else English."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_babel import Babel

LANGUAGES = {"en": "English", "es": "Español"}
SESSION_KEY = "portal_lang"
TRANSLATIONS = Path(__file__).with_name("translations")


def portal_locale() -> str:
    if not has_request_context() or request.blueprint != "portal":
        return "en"
    chosen = session.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=portal_locale)

    @app.context_processor
    def language():
        return {"lang": portal_locale(), "languages": LANGUAGES}


def known(language: str | None) -> str:
    return language if language in LANGUAGES else "en"
