"""MMP templates for the admin (issue 16): the template form (CreateFormTemplateMessage) built
from typed fields, and the answers of Create Template and Get Template By PublicId
(ResponseCreateTemplateMessage, ResponseGetTemplate, TemplateStatus) read into one TemplateState.

Seed 000 names these operations and schemas and shows none of their fields: every field name
and status value here comes from the account's settings, whose defaults are the assumptions of
providers/mmp/assumed.py (`bodies.template_form`, `responses.template_*`, `template_statuses`),
overridable per account (docs/PROVIDERS.md). A mixin of MmpProvider (which supplies call(),
_body(), the settings and the management calls of manage.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from providers.base import ErrorClass, ProviderError
from providers.mmp.bodies import pluck

_PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
# The statuses a template can have in Loa (templates_app's Template.Status values): a
# `template_statuses` entry naming anything else is ignored, never stored.
STATUSES = ("approved", "pending", "rejected", "disabled", "deleted")


def placeholders(text: str) -> list[str]:
    """The {{names}} of a template's content, in order of first appearance."""
    names: list[str] = []
    for m in _PLACEHOLDER.finditer(text or ""):
        if m.group(1) not in names:
            names.append(m.group(1))
    return names


def answer_row(data: Any) -> dict:
    """The object an answer is about: its `data` object when it wraps one, else itself."""
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        return data["data"]
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class TemplateForm:
    """What a person fills in to create or change an MMP template."""

    name: str
    channel_id: str  # the channel's publicId: MMP templates belong to a channel
    channel_kind: str
    content: str  # the text, with {{param}} placeholders
    message_type: str = "TEXT"
    application_id: int | None = None  # None: the account's application_ids by channel kind

    @property
    def params(self) -> list[str]:
        return placeholders(self.content)


@dataclass(frozen=True)
class TemplateState:
    """What the provider says about one template."""

    template_id: str
    status: (
        str | None
    )  # ours (approved, pending, rejected, disabled, deleted); None: not understood
    provider_status: str  # as the provider wrote it ("" if the answer had none)
    reason: str
    item: dict = field(default_factory=dict)  # list_templates' item shape, for storing
    raw: Any = None


class MmpTemplatesMixin:
    """Create, read and change templates from typed fields; read what the answers say."""

    # MMP templates belong to a channel (Get List Approved Template asks by publicId): the
    # template sync asks for each channel of the account (templates_app/sync.py).
    templates_per_channel = True

    def template_body(self, form: TemplateForm) -> Any:
        """The CreateFormTemplateMessage body for this form (settings `bodies.template_form`)."""
        application_id = form.application_id
        if application_id is None:
            application_id = (self.settings.get("application_ids") or {}).get(form.channel_kind)
        values = {
            "name": form.name,
            "channel_id": form.channel_id,
            "channel_kind": form.channel_kind,
            "application_id": application_id,
            "message_type": form.message_type,
            "content": form.content,
            "params": form.params,
        }
        return self._body("template_form", values)

    def template_create_from(self, form: TemplateForm) -> TemplateState:
        """Create Template; the state its answer gives (pending when it names no status)."""
        data = self.create_template(template=self.template_body(form))
        state = self.template_state(data, channel_id=form.channel_id, kind=form.channel_kind)
        if not state.template_id:
            # The template may exist now: the person is told to sync rather than create it again.
            raise ProviderError(
                ErrorClass.AMBIGUOUS,
                "no_template_id",
                "Create Template answered without a template id.",
            )
        return state

    def template_update_from(self, template_id: str, form: TemplateForm) -> Any:
        """Update Template with the same form (the publicId in the path)."""
        return self.update_template(template_id=template_id, template=self.template_body(form))

    def template_fetch(self, *, template_id: str, channel_id: str = "") -> TemplateState:
        """Get Template By PublicId, read into a TemplateState (its status, reason and content)."""
        data = self.get_template(template_id=template_id)
        state = self.template_state(data, channel_id=channel_id)
        if not state.template_id:
            return TemplateState(
                template_id=template_id,
                status=state.status,
                provider_status=state.provider_status,
                reason=state.reason,
                item={**state.item, "template_id": template_id},
                raw=data,
            )
        return state

    def template_state(self, data: Any, *, channel_id: str = "", kind: str = "") -> TemplateState:
        responses = self.settings.get("responses") or {}
        row = answer_row(data)
        template_id = pluck(data, responses.get("template_id", []))
        raw_status = pluck(data, responses.get("template_status", []))
        raw_status = "" if raw_status is None or isinstance(raw_status, dict | list) else raw_status
        table = {
            str(k).upper(): v for k, v in (self.settings.get("template_statuses") or {}).items()
        }
        status = (
            table.get(str(raw_status).strip().upper().replace(" ", "_")) if raw_status else None
        )
        if status not in STATUSES:
            status = None
        reason = pluck(data, responses.get("template_reason", []))
        reason = "" if isinstance(reason, dict | list) else reason
        item = self._template(row, channel_id, kind or self._kind_of(row)) if row else {}
        if isinstance(template_id, dict | list):
            template_id = None  # a path that found an object, not an id: not an answer we read
        template_id = str(template_id or item.get("template_id") or "")
        item["template_id"] = template_id
        # _template reads a listed (approved) template; here the status is the answer's own.
        item["status"] = status or ""
        item["status_reason"] = str(reason or "")[:300]
        return TemplateState(
            template_id=template_id,
            status=status,
            provider_status=str(raw_status),
            reason=str(reason or ""),
            item=item,
            raw=data,
        )
