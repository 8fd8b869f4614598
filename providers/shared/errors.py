"""The one way a service says no.

A service that cannot do what it was asked (a campaign that may not be sent, a file that cannot be
read, a template that is not usable) raises `Refused` with a message for the person who asked,
translatable (gettext_lazy or an already translated string), instead of returning False, -1 or a
bare string. Admin actions and views turn it into a message (`messages.error(request,
exc.message)`); tasks record it where a person sees it.
"""

from __future__ import annotations

from django.utils.functional import Promise


class Refused(Exception):
    """A service refused: `message` is for people (str or lazy translation), `code` for programs
    and tests (a stable slug such as "not_draft", "no_lists")."""

    def __init__(self, message: str | Promise, *, code: str = "") -> None:
        super().__init__(str(message))
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return str(self.message)
