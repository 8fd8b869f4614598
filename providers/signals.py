"""Signals providers sends to the rooms above it, which it may not import.

sandbox_callbacks_queued: the sandbox provider stored a batch of simulated callbacks
(SandboxCallback rows) after a batch of sends. Sent with sender=SandboxProvider and the keyword
arguments account_id (the ProviderAccount's pk) and count (rows stored). webhooks connects a
receiver that queues its pump task, which delivers them through the webhook path.
"""

from __future__ import annotations

from django.dispatch import Signal

sandbox_callbacks_queued = Signal()
