"""English and Spanish for the portal and the debtor's emails (Flask-Babel).

Staff and client pages stay in English. On portal pages the language is the one the debtor
chose (kept in the session and on the debtor), else the browser's preference, else English."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_babel import Babel, get_translations
from jinja2 import pass_context
from markupsafe import Markup

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


def bound_gettext(translations) -> dict:
    """`gettext` and `ngettext` for one render, bound to the translations in force when it
    starts (Jinja's i18n `_` looks `gettext` up in the template's context), so that each
    string is a catalogue lookup rather than a new search for the request's translations.
    They behave as Jinja's own new-style ones: autoescaped, then formatted with %."""

    @pass_context
    def gettext(context, string: str, **variables):
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    @pass_context
    def ngettext(context, singular: str, plural: str, num: int, **variables):
        variables.setdefault("num", num)
        text = translations.ungettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return {"gettext": gettext, "ngettext": ngettext}


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=portal_locale)

    @app.context_processor
    def language():
        # Run for each render, so inside force_locale (emails) too.
        return {"lang": portal_locale(), "languages": LANGUAGES} | bound_gettext(get_translations())


def known(language: str | None) -> str:
    return language if language in LANGUAGES else "en"
