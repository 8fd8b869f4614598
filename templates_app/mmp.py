"""MMP templates managed from the admin (issue 16): create on the provider, get, update and
delete, each kept in its Template row with the approval state the provider gives.

The provider side (the CreateFormTemplateMessage body, reading TemplateStatus) is
providers/mmp/templates.py, on assumptions an account can override (providers/mmp/assumed.py);
a failure's sentence is providers.channels.management_error. "List approved" is the template
sync's (templates_app/sync.py), which asks Get Template about the templates it no longer lists.

Deleting a template at the provider keeps its row (status deleted): the campaigns that used it
keep their history, and templates_unusable pauses the ones still running on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.channels import provider_call
from providers.mmp.templates import TemplateForm, TemplateState, answer_row
from providers.models import Channel, ProviderAccount
from providers.shared.errors import Refused
from templates_app.models import Template
from templates_app.signals import Followup, templates_unusable
from templates_app.sync import UNUSABLE, _template_upsert

S = Template.Status


def mmp_account_offers_templates(account: ProviderAccount) -> bool:
    """Can this account's provider create and change templates (MMP)?"""
    try:
        return hasattr(account.provider_class, "template_create_from")
    except KeyError:  # a kind no longer registered
        return False


def mmp_template_channels(account: ProviderAccount):
    """The account's channels a template can be created on: active, with a publicId."""
    return Channel.objects.filter(account=account, is_active=True).exclude(external_id="")


@dataclass
class TemplateOutcome:
    """What a template operation did: the row as stored, the provider's answer, and what the
    rooms above did about it (campaigns paused), with anything a person should know."""

    template: Template
    state: TemplateState | None = None
    followups: list[Followup] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def message(self) -> str:
        t = self.template
        parts = [
            _("{name} [{id}]: {status} at the provider").format(
                name=t.name, id=t.provider_template_id, status=t.get_status_display().lower()
            )
        ]
        if self.state is not None and self.state.provider_status and self.state.status is None:
            parts.append(
                _("(the provider said “{value}”, a status Loa does not know: unchanged)").format(
                    value=self.state.provider_status
                )
            )
        if t.status_reason:
            parts.append(f"— {t.status_reason}")
        text = " ".join(parts) + "."
        extra = [f.text for f in self.followups if f.items] + self.warnings
        return " ".join([text, *extra])


def _form(*, channel: Channel, name: str, message_type: str, content: str) -> TemplateForm:
    if not channel.external_id:
        raise Refused(
            _("Enter the provider's channel id (publicId) on channel {name} first.").format(
                name=channel.name
            ),
            code="no_channel_id",
        )
    if not name.strip() or not content.strip():
        raise Refused(_("A template needs a name and a content."), code="empty_template")
    return TemplateForm(
        name=name.strip(),
        channel_id=channel.external_id,
        channel_kind=channel.kind,
        content=content,
        message_type=message_type,
        application_id=getattr(channel, "application_id", None),
    )


def _item(*, state: TemplateState, form: TemplateForm, status: str) -> dict:
    """A list_templates-shaped item for _template_upsert: what the person entered, with the
    provider's status."""
    return {
        "template_id": state.template_id,
        "name": form.name,
        "body": form.content,
        "status": status,
        "status_reason": state.reason,
        "channel_kind": form.channel_kind,
        "params": [{"name": n, "type": "text", "required": True} for n in form.params],
    }


def _announce(template: Template) -> list[Followup]:
    """templates_unusable for this one template, if it may not be sent: campaigns pauses the
    campaigns running on it. What they did comes back as followups."""
    if template.status not in UNUSABLE:
        return []
    followups: list[Followup] = []
    for _receiver, answer in templates_unusable.send(
        sender=Template, account=template.account, template_ids=[template.pk]
    ):
        followups += answer or []
    return followups


def mmp_template_create(
    *, account: ProviderAccount, channel: Channel, name: str, message_type: str, content: str
) -> TemplateOutcome:
    """Create Template at the provider, then store it (pending until the provider approves it,
    unless its answer says otherwise)."""
    if not mmp_account_offers_templates(account):
        raise Refused(_("This provider cannot create templates."), code="not_supported")
    if channel.account_id != account.pk:
        raise Refused(_("The channel belongs to another account."), code="wrong_channel")
    form = _form(channel=channel, name=name, message_type=message_type, content=content)
    with provider_call(account, changes=True) as provider:
        state = provider.template_create_from(form)
    template, _c, _ch, _old = _template_upsert(
        account=account,
        item=_item(state=state, form=form, status=state.status or S.PENDING),
        oas={},
        scope_oa=None,
        now=timezone.now(),
    )
    return TemplateOutcome(template=template, state=state)


def _store_state(template: Template, state: TemplateState) -> tuple[Template, str | None]:
    """Store what Get Template said on the row: its status (an unknown one leaves ours) and
    reason; its name and content when the answer has them. Returns (template, status before)."""
    old_status = template.status
    named = state.item.get("name") not in (None, "", state.template_id)
    if not state.item.get("body"):
        # No content in the answer: the parameters stay as they are; only the state moves.
        now = timezone.now()
        fields = {"synced_at": now}
        if state.status is not None:
            fields.update(status=state.status, status_reason=state.reason[:300])
            if state.status != old_status:
                fields["status_changed_at"] = now
        if named:
            fields["name"] = str(state.item["name"])[:200]
        Template.objects.filter(pk=template.pk).update(**fields)
        template.refresh_from_db()
        return template, old_status
    item = dict(state.item)
    item["template_id"] = template.provider_template_id
    item["status"] = state.status or old_status
    item["status_reason"] = state.reason if state.status is not None else template.status_reason
    if not named:
        item["name"] = template.name
    item["channel_kind"] = item.get("channel_kind") or template.channel_kind
    # What the answer does not carry keeps our value (the reader fills defaults for it).
    row = {str(k).lower() for k in answer_row(state.raw)}
    if not row & {"tag", "category"}:
        item.pop("tag", None)
    if "buttons" not in row:
        item["buttons"] = template.buttons
    if "previewurl" not in row:
        item["preview_url"] = template.preview_url
    template, _c, _changed, _old = _template_upsert(
        account=template.account,
        item=item,
        oas={},
        scope_oa=template.official_account,
        now=timezone.now(),
    )
    return template, old_status


def mmp_template_refresh(*, template: Template) -> TemplateOutcome:
    """Get Template By PublicId: its approval state (and content) as the provider has it now."""
    if not mmp_account_offers_templates(template.account):
        raise Refused(_("This provider has no template to get."), code="not_supported")
    with provider_call(template.account) as provider:
        state = provider.template_fetch(template_id=template.provider_template_id)
    template, old_status = _store_state(template, state)
    followups = _announce(template) if old_status not in UNUSABLE else []
    return TemplateOutcome(template=template, state=state, followups=followups)


def mmp_template_update(
    *, template: Template, channel: Channel, name: str, message_type: str, content: str
) -> TemplateOutcome:
    """Update Template with the form, then ask Get Template for the approval state it is in now
    (a changed template is usually reviewed again)."""
    if not mmp_account_offers_templates(template.account):
        raise Refused(_("This provider cannot change templates."), code="not_supported")
    if channel.account_id != template.account_id:
        raise Refused(_("The channel belongs to another account."), code="wrong_channel")
    form = _form(channel=channel, name=name, message_type=message_type, content=content)
    with provider_call(template.account, changes=True) as provider:
        answer = provider.template_update_from(template.provider_template_id, form)
        state = provider.template_state(answer, channel_id=form.channel_id, kind=form.channel_kind)
    warnings: list[str] = []
    if state.status is None:
        try:
            with provider_call(template.account) as provider:
                state = provider.template_fetch(template_id=template.provider_template_id)
        except Refused as exc:
            warnings.append(
                _("Changed at the provider; its approval state could not be read: {error}").format(
                    error=exc.message
                )
            )
    item = _item(
        state=state,
        form=form,
        status=state.status or template.status,
    )
    item["template_id"] = template.provider_template_id
    old_status = template.status
    template, _c, _ch, _old = _template_upsert(
        account=template.account,
        item=item,
        oas={},
        scope_oa=template.official_account,
        now=timezone.now(),
    )
    followups = _announce(template) if old_status not in UNUSABLE else []
    return TemplateOutcome(template=template, state=state, followups=followups, warnings=warnings)


def mmp_template_delete(*, template: Template) -> TemplateOutcome:
    """Delete Template at the provider. The row stays, marked deleted (campaigns keep their
    history); campaigns running or scheduled on it are paused (templates_unusable)."""
    if not mmp_account_offers_templates(template.account):
        raise Refused(_("This provider cannot delete templates."), code="not_supported")
    with provider_call(template.account, changes=True) as provider:
        provider.delete_template(template_id=template.provider_template_id)
    with transaction.atomic():
        Template.objects.filter(pk=template.pk).update(
            status=S.DELETED,
            status_reason=_("Deleted at the provider from Loa's admin.")[:300],
            status_changed_at=timezone.now(),
        )
    template.refresh_from_db()
    return TemplateOutcome(template=template, followups=_announce(template))
