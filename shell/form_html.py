"""Form fields rendered as WTForms renders them, in less time.

WTForms writes every attribute of every input, select and option through `Markup.format`
(a `string.Formatter` pass for each `name="value"`): on the case screen, with its 21 forms and
some 150 attributes, that was the largest part of rendering the page. `QuickForm` renders its
fields with the same widgets and the same HTML, character for character
(tests/shell/test_form_html.py compares both for every field of the case screen's forms),
writing each attribute with an f-string instead.
"""

from __future__ import annotations

import copy

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms.widgets import Input, Select, TextArea
from wtforms.widgets.core import clean_key


def html_params(**kwargs) -> Markup:
    """`wtforms.widgets.html_params`, the same output: attributes sorted by name, True as the
    bare name, False left out, every value escaped (a `"` in a Markup value as `&quot;`)."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            params.append(str(escape(clean_key(key))))
        elif value is not False:
            text = str(escape(value)).replace('"', "&quot;")
            params.append(f'{escape(clean_key(key))}="{text}"')
    return Markup(" ".join(params))


class QuickSelect(Select):
    """`wtforms.widgets.Select` with the attributes written by `html_params` above."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        if self.multiple:
            kwargs["multiple"] = True
        flags = getattr(field, "flags", {})
        for k in dir(flags):
            if k in self.validation_attrs and k not in kwargs:
                kwargs[k] = getattr(flags, k)
        html = [f"<select {html_params(name=field.name, **kwargs)}>"]
        if field.has_groups():
            for group, choices in field._iter_groups_normalized():
                if group is not None:
                    html.append(f"<optgroup {html_params(label=group)}>")
                html.extend(self.render_option(choice) for choice in choices)
                if group is not None:
                    html.append("</optgroup>")
        else:
            html.extend(self.render_option(choice) for choice in field._iter_choices_normalized())
        html.append("</select>")
        return Markup("".join(html))

    @classmethod
    def render_option(cls, choice, **kwargs):
        value = choice.value
        if isinstance(value, bool):
            value = str(value)
        options = {"value": value, **(choice.render_kw or {}), **kwargs}
        if choice.selected:
            options["selected"] = True
        label = escape(choice.label or choice.value)
        return Markup(f"<option {html_params(**options)}>{label}</option>")


class QuickTextArea(TextArea):
    """`wtforms.widgets.TextArea` with the attributes written by `html_params` above."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        flags = getattr(field, "flags", {})
        for k in dir(flags):
            if k in self.validation_attrs and k not in kwargs:
                kwargs[k] = getattr(flags, k)
        return Markup(
            f"<textarea {html_params(name=field.name, **kwargs)}>\r\n"
            f"{escape(field._value())}</textarea>"
        )


_QUICK: dict = {}


def quick_widget(widget):
    """The widget that renders as `widget` does, quicker: an input widget (each calls its own
    `html_params`) copied with the one above; a plain select or text area replaced; any other
    widget itself. Made once per widget (the fields' widgets are made with their classes)."""
    quick = _QUICK.get(widget)
    if quick is None:
        if isinstance(widget, Input):
            quick = copy.copy(widget)
            quick.html_params = html_params
        elif type(widget) is Select:
            quick = QuickSelect(multiple=widget.multiple)
            quick.validation_attrs = widget.validation_attrs
        elif type(widget) is TextArea:
            quick = QuickTextArea()
            quick.validation_attrs = widget.validation_attrs
        else:
            quick = widget
        _QUICK[widget] = quick
    return quick


class QuickForm(FlaskForm):
    """A FlaskForm (CSRF and all) whose fields render through `quick_widget`."""

    class Meta:
        def render_field(self, field, render_kw):
            render_kw = {clean_key(k): v for k, v in render_kw.items()}
            other_kw = getattr(field, "render_kw", None)
            if other_kw is not None:
                other_kw = {clean_key(k): v for k, v in other_kw.items()}
                render_kw = dict(other_kw, **render_kw)
            return quick_widget(field.widget)(field, **render_kw)
