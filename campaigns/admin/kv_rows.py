"""A JSON object edited as name/value rows (a contact's attributes), with the JSON itself only as
an "Advanced" view.

The rows are plain inputs posted as lists (<name>-key, <name>-value, <name>-type): the page works
without JavaScript (three empty rows to fill, the JSON in a <details>); kv_rows.js adds and
removes rows and keeps the JSON view in step. Which one wins on save: the JSON view when its text
differs from the text the page was rendered with (someone edited it), else the rows.

A value that is not a string (a number or list an API stored) keeps its type: its row carries
type "json" and its value is read back as JSON, so saving a page never turns 3 into "3".
"""

from __future__ import annotations

import json
import unicodedata

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

EMPTY_ROWS = 3  # blank rows offered below the filled ones (the page works without JavaScript)
MAX_KEY = 100


class _Invalid:
    """What the widget read when the posted JSON view is not valid JSON (the field says so)."""

    def __init__(self, text: str, error: str):
        self.text = text
        self.error = error


class _Rows(list):
    """The posted rows, (name, value, type) each: told apart from a JSON list typed in the
    JSON view."""


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False)


def _loads_or_text(raw: str):
    """A "json" row's value; edited into something else, it is kept as the text typed."""
    try:
        return json.loads(raw) if raw else ""
    except ValueError:
        return raw


class KeyValueRowsWidget(forms.Widget):
    template_name = ""  # rendered in Python (render), no template file

    class Media:
        js = ["loa/kv_rows.js"]

    def __init__(self, attrs=None, *, key_label=None, value_label=None):
        super().__init__(attrs)
        self.key_label = key_label or gettext_lazy("Name")
        self.value_label = value_label or gettext_lazy("Value")

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-key" not in data and f"{name}-json" not in data and name not in data

    def value_from_datadict(self, data, files, name):
        if f"{name}-key" not in data and f"{name}-json" not in data:
            if name not in data:
                return None  # the field was not on the page: unchanged
            # A script's POST of the JSON itself under the field's name, as before the rows.
            try:
                return json.loads(data[name]) if data[name].strip() else {}
            except ValueError as exc:
                return _Invalid(data[name], str(exc))
        text = data.get(f"{name}-json", "")
        original = data.get(f"{name}-json-initial", "")
        if text.strip() and text.strip() != original.strip():
            try:
                return json.loads(text)
            except ValueError as exc:
                return _Invalid(text, str(exc))
        keys = data.getlist(f"{name}-key") if hasattr(data, "getlist") else []
        values = data.getlist(f"{name}-value") if hasattr(data, "getlist") else []
        types = data.getlist(f"{name}-type") if hasattr(data, "getlist") else []
        rows = _Rows()
        for i, key in enumerate(keys):
            value = values[i] if i < len(values) else ""
            kind = types[i] if i < len(types) else "text"
            rows.append((key, value, kind))
        return rows

    def _rows(self, value) -> list[tuple[str, str, str]]:
        if isinstance(value, _Rows):  # posted rows, shown again with the form's errors
            return [(str(k), str(v), t) for k, v, t in value]
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError:
                return []
        if not isinstance(value, dict):
            return []
        return [
            (str(k), v, "text") if isinstance(v, str) else (str(k), json.dumps(v), "json")
            for k, v in value.items()
        ]

    def render(self, name, value, attrs=None, renderer=None):
        attrs = self.build_attrs(self.attrs, attrs)
        rows = self._rows(value)
        if isinstance(value, _Invalid):
            json_text, initial_text = value.text, ""
        elif isinstance(value, dict):
            json_text = initial_text = _dumps(value)
        elif value is not None and not isinstance(value, (str, _Rows)):
            json_text, initial_text = _dumps(value), ""  # typed in the JSON view, not an object
        else:
            as_dict = {k: (_loads_or_text(v) if t == "json" else v) for k, v, t in rows if k}
            json_text = initial_text = _dumps(as_dict)
        base_id = attrs.get("id") or f"id_{name}"
        body = format_html_join(
            "",
            "{}",
            (
                (self._row(name, base_id, i, key, val, kind),)
                for i, (key, val, kind) in enumerate([*rows, *[("", "", "text")] * EMPTY_ROWS])
            ),
        )
        return format_html(
            '<div class="loa-kv" id="{id}" data-name="{name}">'
            '<table class="loa-kv-rows"><thead><tr><th scope="col">{kl}</th>'
            '<th scope="col">{vl}</th><th scope="col"><span class="visually-hidden">{rm}</span>'
            "</th></tr></thead><tbody>{body}</tbody></table>"
            '<p><button type="button" class="button loa-kv-add" hidden>{add}</button></p>'
            '<details class="loa-kv-advanced"><summary>{adv}</summary>'
            '<p class="help">{advhelp}</p>'
            '<label for="{id}-json" class="visually-hidden">{adv}</label>'
            '<textarea name="{name}-json" id="{id}-json" rows="8" cols="60" spellcheck="false">'
            "{json}</textarea>"
            '<input type="hidden" name="{name}-json-initial" value="{initial}"></details></div>',
            id=base_id,
            name=name,
            kl=self.key_label,
            vl=self.value_label,
            rm=_("Remove"),
            body=body,
            add=_("Add a row"),
            adv=_("Advanced: edit as JSON"),
            advhelp=_(
                "The same values as a JSON object. Edit here only if you know JSON: when this "
                "text is changed, it replaces the rows above on save."
            ),
            json=json_text,
            initial=initial_text,
        )

    def _row(self, name, base_id, i, key, value, kind):
        return format_html(
            '<tr class="loa-kv-row">'
            '<td><input type="text" name="{name}-key" value="{key}" maxlength="{max}" '
            'aria-label="{kl}" id="{id}-key-{i}"></td>'
            '<td><input type="text" name="{name}-value" value="{value}" aria-label="{vl}" '
            'id="{id}-value-{i}"{title}>'
            '<input type="hidden" name="{name}-type" value="{kind}"></td>'
            '<td><button type="button" class="button loa-kv-remove" hidden '
            'aria-label="{rm}">×</button></td></tr>',
            name=name,
            id=base_id,
            i=i,
            key=key,
            value=value,
            kind=kind,
            max=MAX_KEY,
            kl=self.key_label,
            vl=self.value_label,
            rm=_("Remove this row"),
            title=format_html(' title="{}"', _("Kept as JSON (a number, list or object)"))
            if kind == "json"
            else "",
        )


class KeyValueRowsField(forms.Field):
    """A JSON object from KeyValueRowsWidget: names trimmed, blank rows skipped; a duplicate
    name, a value without a name or a wrong JSON view is refused with the row it concerns."""

    widget = KeyValueRowsWidget

    def to_python(self, value):
        if value is None or value == "":
            return {}
        if isinstance(value, _Invalid):
            raise forms.ValidationError(
                _("The JSON view is not valid JSON ({error}).").format(error=value.error)
            )
        if isinstance(value, dict):
            return value
        if not isinstance(value, _Rows):
            raise forms.ValidationError(_('Attributes must be an object, like {"city": "Huế"}.'))
        result: dict = {}
        for key, raw, kind in value:
            key = unicodedata.normalize("NFC", " ".join(str(key).split()))
            raw = unicodedata.normalize("NFC", str(raw)).strip()
            if not key and not raw:
                continue
            if not key:
                raise forms.ValidationError(
                    _("The value “{value}” has no name: name it or empty it.").format(value=raw)
                )
            if len(key) > MAX_KEY:
                raise forms.ValidationError(
                    _("A name is at most {n} characters: “{key}”.").format(n=MAX_KEY, key=key)
                )
            if key in result:
                raise forms.ValidationError(
                    _("The name “{key}” is used twice: keep one row.").format(key=key)
                )
            result[key] = _loads_or_text(raw) if kind == "json" else raw
        return result

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (initial or {})
        except forms.ValidationError:
            return True
