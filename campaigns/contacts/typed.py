"""Which contact attributes are declared typed (campaigns.models.AttributeDefinition): read once
per import, per builder page and per wizard step (a few rows), never per contact."""

from __future__ import annotations

from campaigns.models import AttributeDefinition


def declared_types(keys: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """{key: (type, date_format)} of the declared non-text attributes (of `keys` when given)."""
    qs = AttributeDefinition.objects.exclude(type=AttributeDefinition.Type.TEXT)
    if keys is not None:
        qs = qs.filter(key__in=list(keys))
    return {key: (kind, fmt) for key, kind, fmt in qs.values_list("key", "type", "date_format")}
