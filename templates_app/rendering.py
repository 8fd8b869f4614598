"""Turning a parameter mapping and one recipient's data into the template data we send.

A mapping is {param name: {"source": ..., "value": ..., "format": ...}} where source is
- "field": a contact field ("phone", "name");
- "attribute": a key of the recipient's attributes (campaigns' Contact.attributes);
- "column": a column of the uploaded file. Imports store extra columns as attributes under the
  column's header, so this is an attribute looked up by header, forgiving case, accents and
  spacing ("Thành phố" finds "thanh_pho");
- "constant": the value itself;
- "expression": a small template combining sources, e.g. "{name} - {attr.city}" or
  "{attr.total|amount} đ". Placeholders: {name}, {phone}, {attr.KEY}, {col.HEADER}, each with
  optional "|format" filters; "{{" and "}}" are literal braces. No code is ever evaluated.

"format" is a formatter name from templates_app.formatting.FORMATTERS, or several joined with
"|" ("trim|upper").

Mappings are compiled once (`compile_mapping`) into plain closures: materializing or validating
100,000 recipients must not re-parse the mapping per recipient.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from templates_app.formatting import FORMATTERS, FORMATTERS_ON_EMPTY, column_key, nfc

CONTACT_FIELDS = ("phone", "name")
SOURCES = ("field", "attribute", "column", "constant", "expression")

# (source, label) for mapping forms.
SOURCE_CHOICES = [
    ("field", _("Contact field")),
    ("attribute", _("Contact attribute")),
    ("column", _("Column of the uploaded file")),
    ("constant", _("Fixed text")),
    ("expression", _("Expression")),
]


class MappingError(ValueError):
    pass


def _formatter_chain(fmt: object) -> tuple[Callable[[Any], str], bool]:
    """(formatter, runs_on_empty) for "a|b|c"; raises MappingError on an unknown name."""
    names = [n.strip() for n in str(fmt or "").split("|") if n.strip()]
    for n in names:
        if n not in FORMATTERS:
            raise MappingError(str(_("unknown format “{name}”")).format(name=n))
    if not names:
        return FORMATTERS[""], False
    funcs = [FORMATTERS[n] for n in names]
    on_empty = names[0] in FORMATTERS_ON_EMPTY
    if len(funcs) == 1:
        return funcs[0], on_empty

    def chain(v):
        for f in funcs:
            v = f(v)
        return v

    return chain, on_empty


# ---- contacts and compiled getters ---------------------------------------------------------------


@dataclass(frozen=True)
class ContactData:
    phone: str
    name: str
    attributes: dict[str, Any]
    contact_id: int | None = None


# A getter reads one raw value from (phone, name, attributes).
Getter = Callable[[str, str, dict], str]


def _as_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a JSON 1500000.0 is the number 1500000
    return v if isinstance(v, str) else str(v)


def _field_getter(name: str) -> Getter:
    if name == "phone":
        return lambda p, n, a: p or ""
    if name == "name":
        return lambda p, n, a: n or ""
    raise MappingError(str(_("unknown contact field “{name}”")).format(name=name))


def _attribute_getter(key: str) -> Getter:
    def get(p, n, a):
        v = a.get(key) if a else None
        return v if v.__class__ is str else _as_text(v)

    return get


def _column_getter(header: str) -> Getter:
    wanted = column_key(header)

    def get(p, n, a):
        if not a:
            return ""
        v = a.get(header)
        if v is None:
            # Only on a miss: compare forgivingly (imports keep headers as typed in the file).
            for k, val in a.items():
                if column_key(k) == wanted:
                    return _as_text(val)
            return ""
        return _as_text(v)

    return get


_EXPR_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _ref_getter(ref: str) -> Getter:
    ref = ref.strip()
    head, _dot, rest = ref.partition(".")
    head = head.strip().lower()
    if not _dot:
        if head in CONTACT_FIELDS:
            return _field_getter(head)
        raise MappingError(str(_("unknown placeholder “{ref}”")).format(ref=ref))
    if not rest.strip():
        raise MappingError(str(_("unknown placeholder “{ref}”")).format(ref=ref))
    if head in ("attr", "attribute", "attributes"):
        return _attribute_getter(rest.strip())
    if head in ("col", "column"):
        return _column_getter(rest.strip())
    raise MappingError(str(_("unknown placeholder “{ref}”")).format(ref=ref))


def compile_expression(expr: str) -> Getter:
    """ "{name} - {attr.city|upper}" -> a getter. Raises MappingError on unknown placeholders."""
    parts: list[str | tuple[Getter, Callable, bool]] = []
    pos = 0
    for m in _EXPR_TOKEN.finditer(expr or ""):
        if m.start() > pos:
            parts.append(expr[pos : m.start()])
        token = m.group(0)
        if token == "{{":
            parts.append("{")
        elif token == "}}":
            parts.append("}")
        else:
            ref, _bar, fmt = m.group(1).partition("|")
            formatter, on_empty = _formatter_chain(fmt)
            parts.append((_ref_getter(ref), formatter, on_empty))
        pos = m.end()
    if pos < len(expr or ""):
        rest = expr[pos:]
        if "{" in rest or "}" in rest:
            raise MappingError(str(_("unbalanced braces in “{expr}”")).format(expr=expr))
        parts.append(rest)

    def get(p, n, a):
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                getter, formatter, on_empty = part
                raw = getter(p, n, a)
                out.append(formatter(raw).strip() if (raw or on_empty) else "")
        return "".join(out)

    return get


def compile_spec(spec: dict | None, *, strict: bool = False) -> Getter:
    """One param's spec -> getter of its final (formatted, trimmed, NFC) value.

    strict=False (rendering): a broken spec renders "" so validation reports the param missing
    instead of the engine crashing; strict=True (checking a mapping) raises MappingError.
    """
    try:
        return _compile_spec(spec or {})
    except MappingError:
        if strict:
            raise
        return lambda p, n, a: ""


def _compile_spec(spec: dict) -> Getter:
    raw_get, finish = compile_spec_parts(spec)

    def get(p, n, a):
        return finish(raw_get(p, n, a))

    return get


def compile_spec_parts(spec: dict) -> tuple[Getter, Callable[[str], str]]:
    """(raw getter, finisher): the raw value read from the contact, and what turns it into the
    final value (formatters, trim, NFC). Split so that callers handling many recipients can cache
    the finisher's result per distinct raw value. Raises MappingError."""
    if not isinstance(spec, dict):
        raise MappingError(str(_("the mapping is not an object")))
    source = spec.get("source", "constant") or "constant"
    value = spec.get("value", "")
    value = "" if value is None else str(value)
    formatter, on_empty = _formatter_chain(spec.get("format", ""))
    if source == "field":
        raw_get = _field_getter(value)
    elif source == "attribute":
        raw_get = _attribute_getter(value)
    elif source == "column":
        raw_get = _column_getter(value)
    elif source == "constant":
        const = value

        def raw_get(p, n, a):
            return const
    elif source == "expression":
        raw_get = compile_expression(value)
    else:
        raise MappingError(str(_("unknown source “{source}”")).format(source=source))

    def finish(raw: str) -> str:
        if raw == "" and not on_empty:
            return ""
        out = formatter(raw)
        out = out.strip() if isinstance(out, str) else str(out).strip()
        return out if out.isascii() else nfc(out)

    return raw_get, finish


@dataclass
class CompiledMapping:
    getters: list[tuple[str, Getter]] = field(default_factory=list)

    def render(self, phone: str, name: str, attributes: dict | None) -> dict[str, str]:
        a = attributes or {}
        return {param: get(phone, name, a) for param, get in self.getters}

    def render_contact(self, contact: ContactData) -> dict[str, str]:
        return self.render(contact.phone, contact.name, contact.attributes)


def compile_mapping(mapping: dict[str, dict] | None) -> CompiledMapping:
    return CompiledMapping([(p, compile_spec(spec)) for p, spec in (mapping or {}).items()])


# The engine calls render_params once per recipient with the same mapping object: reuse the last
# compilation while the mapping is unchanged (compared by value, so an edited dict recompiles).
_last_compiled = threading.local()


def _compiled_for(mapping: dict) -> CompiledMapping:
    cached = getattr(_last_compiled, "entry", None)
    if cached is not None and cached[0] is mapping and cached[1] == mapping:
        return cached[2]
    compiled = compile_mapping(mapping)
    try:
        snapshot = {k: dict(v) if isinstance(v, dict) else v for k, v in mapping.items()}
    except AttributeError:
        return compiled
    _last_compiled.entry = (mapping, snapshot, compiled)
    return compiled


def _contact_parts(contact: Any) -> tuple[str, str, dict]:
    return contact.phone or "", contact.name or "", getattr(contact, "attributes", None) or {}


def resolve(spec: dict, contact: ContactData) -> str:
    return compile_spec(spec)(*_contact_parts(contact))


def render_params(mapping: dict[str, dict], contact: ContactData) -> dict[str, str]:
    """Template data for one contact (a ContactData or a Contact)."""
    return _compiled_for(mapping or {}).render(*_contact_parts(contact))


# ---- placeholders in bodies ---------------------------------------------------------------------

PLACEHOLDER_RE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
_ANGLE_RE = re.compile(r"<([\w.]+)>")


def render_body(body: str, data: dict[str, str]) -> str:
    """Preview text with {{param}} or <param> placeholders filled (Zalo previews write <param>)."""

    def sub(m: re.Match) -> str:
        return data.get(m.group(1).strip(), m.group(0))

    text = PLACEHOLDER_RE.sub(sub, body or "")
    return _ANGLE_RE.sub(sub, text)


def render_placeholders(
    text: str, data: dict[str, str], *, escape: Callable[[str], str] | None = None
) -> str:
    """Fill {{param}} only (free content: SMS, Viber, email). Unknown placeholders stay visible so
    a preview shows what is missing; `escape` is applied to values (HTML for email bodies)."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in data:
            return m.group(0)
        return escape(data[name]) if escape else data[name]

    return PLACEHOLDER_RE.sub(sub, text or "")


def placeholders(*texts: str) -> list[str]:
    """Distinct {{placeholder}} names in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for m in PLACEHOLDER_RE.finditer(text or ""):
            seen.setdefault(m.group(1), None)
    return list(seen)


# ---- mapping checks and suggestions -------------------------------------------------------------


def validate_mapping(mapping: dict, param_names: list[str]) -> list[str]:
    """Structural errors of a mapping (missing params, unknown sources, formats, placeholders);
    an empty list when fine."""
    errors = []
    mapping = mapping if isinstance(mapping, dict) else {}
    for name in param_names:
        spec = mapping.get(name)
        if not spec:
            errors.append(str(_("Parameter “{name}” has no mapping.")).format(name=name))
            continue
        if not isinstance(spec, dict) or spec.get("source") not in SOURCES:
            errors.append(str(_("Parameter “{name}” has an unknown source.")).format(name=name))
            continue
        try:
            _formatter_chain(spec.get("format", ""))
        except MappingError:
            errors.append(str(_("Parameter “{name}” has an unknown format.")).format(name=name))
            continue
        try:
            _compile_spec(spec)
        except MappingError as exc:
            errors.append(str(_("Parameter “{name}”: {error}.")).format(name=name, error=str(exc)))
    return errors


_NAME_HINTS = {"name", "customer_name", "ten", "ho_ten", "fullname", "full_name", "ten_khach_hang"}
_PHONE_HINTS = {"phone", "phone_number", "sdt", "so_dien_thoai", "mobile"}


def mapping_suggest(params: list[Any]) -> dict[str, dict]:
    """A starting mapping: name-like params from the contact's name, phone-like from the phone,
    everything else from the file column of the same name; formats from the param type."""
    type_formats = {
        "amount": "amount",
        "currency": "currency",
        "date": "date",
        "title": "title",
        "phone_number": "phone_local",
        "customer_name": "trim",
    }
    out = {}
    for p in params:
        name = p if isinstance(p, str) else p.name
        ptype = "" if isinstance(p, str) else getattr(p, "param_type", "")
        key = column_key(name)
        if key in _NAME_HINTS or ptype == "customer_name":
            spec = {"source": "field", "value": "name"}
        elif key in _PHONE_HINTS:
            spec = {"source": "field", "value": "phone"}
        else:
            spec = {"source": "column", "value": name}
        fmt = type_formats.get(ptype, "")
        if ptype == "title" and spec["source"] == "column":
            spec = {"source": "attribute", "value": "gender"}
        if fmt:
            spec["format"] = fmt
        out[name] = spec
    return out
