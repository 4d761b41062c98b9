"""Every portal string has its Spanish, and the compiled catalogue is the one in the .po."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
SPANISH = ROOT / "correspondence" / "translations" / "es" / "LC_MESSAGES"


def _source_messages() -> set:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=keywords
    ):
        found.add(message)
    return found


def test_every_portal_string_is_translated_to_spanish():
    with (SPANISH / "messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {
        m.id
        for m in catalog
        if m.id and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    missing = sorted(str(m) for m in _source_messages() - translated)
    assert not missing, "add these to the Spanish catalogue (README: Translations): " + repr(
        missing
    )


def _key(value):
    return tuple(value) if isinstance(value, list | tuple) else value


def test_the_compiled_catalogue_matches_the_po():
    with (SPANISH / "messages.po").open("rb") as f:
        po = {_key(m.id): _key(m.string) for m in read_po(f) if m.id}
    with (SPANISH / "messages.mo").open("rb") as f:
        mo = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert mo == po, "run: pybabel compile -d correspondence/translations"


def test_a_render_uses_the_language_in_force_when_it_starts(app):
    """Templates translate through gettext bound once per render (portal/i18n.py): what is
    rendered under force_locale (as emails are, agency/mail.py) during an English page's
    request is in that language, and the page after it in English again; plurals and
    escaping as Jinja's own gettext does them."""
    from flask import render_template_string
    from flask_babel import force_locale

    page = (
        '{{ _("Hello, %(name)s", name=who) }} '
        '{{ ngettext("We recorded your dispute of account %(reference)s, with %(num)d document.",'
        ' "We recorded your dispute of account %(reference)s, with %(num)d documents.",'
        " n, reference=who) }}"
    )
    with app.test_request_context("/portal/", headers={"Accept-Language": "en"}):
        assert render_template_string(page, who="<b>", n=2) == (
            "Hello, &lt;b&gt; We recorded your dispute of account &lt;b&gt;, with 2 documents."
        )
        with force_locale("es"):
            assert render_template_string(page, who="x", n=1) == (
                "Hola, x Registramos su disputa de la cuenta x, con 1 documento."
            )
        assert render_template_string(page, who="x", n=1).startswith("Hello, x We recorded")
    with app.test_request_context("/portal/", headers={"Accept-Language": "es"}):
        assert render_template_string(page, who="x", n=3).endswith("con 3 documentos.")
