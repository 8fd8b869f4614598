"""Seams campaigns offers the room above it (webhooks) and its own packages (contacts): what an
erasure announces, so that whoever holds a copy of the person's data scrubs it, without
campaigns importing them (filled in their AppConfig.ready; see docs/ARCHITECTURE.md, "Seams").

- `contacts_erased(sender, batch: ErasedBatch)`: sent once per batch of an erase, after the
  batch's contacts, messages and attempts were rewritten and committed. webhooks
  (webhooks/privacy.py) blanks the raw webhook events and inbound replies of these contacts.
- `erasure_finished(sender, phones: frozenset[str], national: frozenset[str])`: sent once at the
  end of an erase (one person, or a whole bulk file) with every normalized phone erased;
  campaigns.contacts (importing/redact.py) rewrites the stored import files and error reports
  without their rows. Once per erase, not per batch: each call reads every stored file.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal


@dataclass(frozen=True)
class ErasedBatch:
    """One batch of an erase: the contacts' ids, their normalized phones (84..., 855...) and the
    token each phone became (Contact.phone, Message.phone now hold it)."""

    contact_ids: tuple[int, ...]
    tokens: dict[str, str]  # normalized phone -> token

    @property
    def phones(self) -> tuple[str, ...]:
        return tuple(self.tokens)


contacts_erased = Signal()
erasure_finished = Signal()
