"""The MMP settings' little languages: JSON body templates filled with a message's values, dotted
paths that read a value out of an answer, path templates, and the deep merge of an account's
settings over the defaults.

Bodies are JSON templates: a string that is exactly "{{name}}" becomes the value itself (object,
list, number), "{{name}}" inside a longer string is substituted as text, and keys whose value
renders to null are dropped. An unknown placeholder is a configuration error naming it. Paths may
hold {name} placeholders, filled URL-encoded.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import quote

from providers.base import ErrorClass, ProviderError

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_PATH_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def deep_merge(base: dict, override: dict) -> dict:
    """Defaults overridden key by key, recursively: {"api": {"broadcast": {"path": ...}}} changes
    one path and keeps the other operations' defaults."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render(template: Any, values: dict[str, Any]) -> Any:
    """Fill a JSON body template (see the module docstring)."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            rendered = render(value, values)
            if rendered is not None:
                out[key] = rendered
        return out
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return _value(whole.group(1), values)

        def text(m: re.Match) -> str:
            value = _value(m.group(1), values)
            return "" if value is None else str(value)

        return _PLACEHOLDER.sub(text, template)
    return template


def _value(name: str, values: dict[str, Any]) -> Any:
    if name not in values:
        raise ProviderError(
            ErrorClass.CONFIGURATION,
            "bad_settings",
            f"Unknown placeholder {{{{{name}}}}} in the MMP settings.",
        )
    return values[name]


def pluck(data: Any, paths: list[str] | str) -> Any:
    """The first value found at one of the dotted paths ("data.0.messageId")."""
    for path in [paths] if isinstance(paths, str) else paths:
        node = data
        ok = True
        for part in str(path).split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                ok = False
                break
        if ok and node is not None:
            return node
    return None


def fill_path(path: str, values: dict[str, Any]) -> str:
    """A path template with its {placeholders} filled, each value URL-encoded."""

    def fill(m: re.Match) -> str:
        value = _value(m.group(1), values)
        return quote("" if value is None else str(value), safe="")

    return _PATH_PLACEHOLDER.sub(fill, path)
