"""shell.form_html renders every field of the case screen's forms exactly as WTForms does."""

from __future__ import annotations

import inspect

import pytest
from flask import render_template_string
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import widgets

from agency import case_forms
from shell.form_html import QuickForm, html_params, quick_widget

FORMS = [
    form
    for _, form in inspect.getmembers(case_forms, inspect.isclass)
    if issubclass(form, QuickForm) and form is not QuickForm
]

# What a page passes when it renders a field: nothing, the field macro's attributes (False
# left out, True as a bare name), and values to escape, one a Markup holding a quote.
RENDER_KW = [
    {},
    {"aria-invalid": False, "aria-describedby": False, "autocomplete": False},
    {"aria_invalid": "true", "aria_describedby": "x-help x-error", "autocomplete": "off"},
    {"class_": 'a "b" <c> & d', "data_x": Markup('say "hi" & <b>'), "required": True},
    {"placeholder": 12, "disabled": True, "readonly": False},
]

# Each form read from a post: values chosen, values refused (errors), and nothing at all.
POSTED = {
    "": {},
    "chosen": {
        "phone": "212-555-0100",
        "outcome": "voicemail",
        "note": 'He said "call <later>" & hung up',
        "amount": "1,234.50",
        "due_on": "2026-12-01",
        "frequency": "monthly",
        "count": "6",
        "kind": "original_creditor",
        "channel": "letter",
        "name": "O'Hara & Sons",
        "confirm": "y",
        "days": ["0", "5"],
        "start": "09:00",
        "end": "17:30",
        "wanted": "y",
        "situation": "hardship",
        "number": "212-555-0100",
        "type": "work",
        "close_reason": "recalled",
        "reason": "Because",
        "installments": "6",
        "to": "a@example.com",
        "template": "payment_options",
        "method": "wire",
        "reference": "<chk> 1",
        "percent": "80",
        "expires_on": "2026-12-20",
        "received_at": "2026-11-20",
    },
    "refused": {"amount": "lots", "due_on": "soon", "count": "x", "days": ["9"], "start": "x"},
}


def _forms(posted: dict):
    for form_class in FORMS:
        data = MultiDict()
        for key, value in posted.items():
            for one in value if isinstance(value, list) else [value]:
                data.add(f"p-{key}", one)
        form = form_class(formdata=data if posted else None, prefix="p")
        for name in ("phone", "number", "to"):  # the choices the case screen sets per case
            if not getattr(form._fields.get(name), "choices", True):
                form._fields[name].choices = ["212-555-0100", "a@example.com", "other"]
        if posted:
            form.validate()
        yield form


@pytest.mark.parametrize("posted", list(POSTED))
def test_every_field_renders_as_wtforms_renders_it(app, posted):
    with app.test_request_context("/"):
        rendered = 0
        for form in _forms(POSTED[posted]):
            for field in form:
                for render_kw in RENDER_KW:
                    ours = field(**render_kw)
                    kw = {widgets.core.clean_key(k): v for k, v in render_kw.items()}
                    theirs = field.widget(field, **kw)
                    assert ours == theirs, (type(form).__name__, field.name, render_kw)
                    rendered += 1
                assert str(field.label) == render_template_string(
                    '<label for="{{ f.label.field_id }}">{{ f.label.text }}</label>', f=field
                )
        assert rendered > 40 * len(RENDER_KW)


def test_every_kind_of_widget_of_the_forms_has_its_quick_twin(app):
    """Each widget the forms use is rendered the quick way (none falls back unnoticed)."""
    with app.test_request_context("/"):
        for form in _forms({}):
            for field in form:
                assert quick_widget(field.widget) is not field.widget, (field.name, field.widget)
                assert quick_widget(field.widget) is quick_widget(field.widget)


def test_html_params_is_wtforms_html_params():
    cases = [
        {},
        {"a": True, "b": False, "c": None, "d": 0, "e": ""},
        {"for_": "x", "class_": "y", "data_foo_bar": "z", "aria_label": 'q"<>&'},
        {"value": Markup('a"b'), "name": Markup("<i>")},
    ]
    for kwargs in cases:
        assert html_params(**kwargs) == widgets.html_params(**kwargs)


def test_the_csrf_token_is_on_every_quick_form(app):
    """The case screen's forms keep their CSRF token."""
    was = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        with app.test_request_context("/"):
            tokens = set()
            for form in _forms({}):
                hidden = str(form.hidden_tag())
                assert 'name="p-csrf_token" type="hidden" value="' in hidden, type(form)
                tokens.add(hidden.split('value="')[1].split('"')[0])
            assert len(tokens) == 1  # one token a request, as FlaskForm gives
    finally:
        app.config["WTF_CSRF_ENABLED"] = was
