"""A template's parameters: what the mapping must fill and the rules each value must pass.

TemplateParam rows come from the provider (sync) or the admin; content templates (SMS, Viber,
email) also take every {{placeholder}} of their text as a plain-text parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from providers.models import ChannelKind
from templates_app.models import Template, TemplateParam
from templates_app.rendering import placeholders


@dataclass(frozen=True)
class ParamSpec:
    """A param not stored as a TemplateParam: a free-content placeholder (plain text, required,
    no length limit of its own)."""

    name: str
    param_type: str = TemplateParam.Type.TEXT
    required: bool = True
    min_length: int = 0
    max_length: int | None = None

    def get_param_type_display(self) -> str:
        """As TemplateParam's, so that both kinds of param read the same."""
        return str(TemplateParam.Type(self.param_type).label)


def template_params(*, template: Template) -> list:
    """The template's params in declared order; for content templates, placeholders of the body
    and subject that have no TemplateParam row are added as plain text params."""
    params = list(template.params.all())
    if template.channel_kind != ChannelKind.ZALO_ZNS:
        known = {p.name for p in params}
        params += [
            ParamSpec(n) for n in placeholders(template.subject, template.body) if n not in known
        ]
    return params


def template_params_from_body(*, template: Template) -> int:
    """Content templates (SMS, Viber, email): create a plain-text param for every {{placeholder}}
    of the subject and body that has none yet. Returns how many were added."""
    if template.channel_kind == ChannelKind.ZALO_ZNS:
        return 0
    names = placeholders(template.subject, template.body)
    existing = set(template.params.values_list("name", flat=True))
    start = template.params.count()
    new = [
        TemplateParam(
            template=template,
            name=n[:100],
            param_type=TemplateParam.Type.TEXT,
            required=True,
            position=start + i,
        )
        for i, n in enumerate(n for n in names if n not in existing)
    ]
    TemplateParam.objects.bulk_create(new)
    return len(new)


def template_params_replace(*, template: Template, params: list[dict]) -> bool:
    """Make the template's params exactly `params` (in order): update in place, add new ones,
    delete vanished ones. Returns True when anything changed."""
    existing = {p.name: p for p in template.params.all()}
    changed = False
    keep = set()
    for position, spec in enumerate(params):
        keep.add(spec["name"])
        current = existing.get(spec["name"])
        values = {**spec, "position": position}
        if current is None:
            TemplateParam.objects.create(template=template, **values)
            changed = True
            continue
        dirty = [k for k, v in values.items() if getattr(current, k) != v]
        if dirty:
            for k in dirty:
                setattr(current, k, values[k])
            current.save(update_fields=dirty)
            changed = True
    vanished = [p.pk for name, p in existing.items() if name not in keep]
    if vanished:
        TemplateParam.objects.filter(pk__in=vanished).delete()
        changed = True
    return changed
