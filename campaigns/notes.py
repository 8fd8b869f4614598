"""Texts Loa writes for people to read later (a campaign's history, why it paused or waits),
kept translatable.

A worker has no reader: what it writes in the site's language an English-speaking marketer
would read in Vietnamese. So the message id and its arguments are stored beside the text, and
the text is rendered again, in the reader's language, when shown. The plain text stays too (in
the language of whoever caused it), for exports and for rows written before this existed.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext


class Note:
    """A message id (marked with gettext_noop at the call site) and its arguments, which must be
    JSON values (format dates before passing them)."""

    def __init__(self, msgid: str, **args: Any):
        self.msgid = msgid
        self.args = args

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
        return gettext(stored["m"]).format(**args)
    except (KeyError, IndexError, ValueError):
        return text or stored["m"]


def split(note: str | Note) -> tuple[str, dict]:
    """(the text now, what to store for rendering later) for a plain string or a Note."""
    if isinstance(note, Note):
        return str(note)[:500], note.stored()
    return str(note or "")[:500], {}
