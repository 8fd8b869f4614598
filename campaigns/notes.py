"""Texts Loa writes for people to read later (a campaign's history, why it paused or waits),
kept translatable.

A worker has no reader: what it writes in the site's language an English-speaking marketer
would read in Vietnamese. So the message id and its arguments are stored beside the text, and
the text is rendered again, in the reader's language, when shown. The plain text stays too (in
the language of whoever caused it), for exports and for rows written before this existed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext


class Note:
    """A message id (marked with gettext_noop at the call site) and its arguments, which must be
    JSON values or aware datetimes: a datetime is stored as {"dt": ISO} and shown in the
    reader's language's one date-time format (config/formats: "19:00 03/12/2026")."""

    def __init__(self, msgid: str, **args: Any):
        self.msgid = msgid
        self.args = {
            k: {"dt": v.isoformat()} if isinstance(v, datetime) else v for k, v in args.items()
        }

    def __str__(self) -> str:
        return render("", self.stored())

    def stored(self) -> dict:
        return {"m": self.msgid, "a": self.args}


def render(text: str, stored: dict | None) -> str:
    """`stored` in the current language, or `text` when there is none (or it no longer fits the
    catalogue: a message id whose placeholders changed since the row was written)."""
    if not isinstance(stored, dict) or not isinstance(stored.get("m"), str):
        return text
    args = stored.get("a") if isinstance(stored.get("a"), dict) else {}
    try:
        args = {k: _when(v) for k, v in args.items()}
        return gettext(stored["m"]).format(**args)
    except (KeyError, IndexError, ValueError):
        return text or stored["m"]


def _when(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("dt"), str):
        when = datetime.fromisoformat(value["dt"])
        return formats.date_format(timezone.localtime(when), "DATETIME_FORMAT")
    return value


def split(note: str | Note) -> tuple[str, dict]:
    """(the text now, what to store for rendering later) for a plain string or a Note."""
    if isinstance(note, Note):
        return str(note)[:500], note.stored()
    return str(note or "")[:500], {}
