"""Which contact attributes are declared typed (campaigns.models.AttributeDefinition): read once
per import, per builder page and per wizard step (a few rows), never per contact. And the
conversion of the values contacts already held when an attribute is declared (imports convert
new values; this converts the old ones to the same stored form)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.attribute_types import converter
from campaigns.models import AttributeDefinition, Contact

CONVERT_BATCH = 2000
CONVERT_INLINE_MAX = 20_000  # contacts holding the key: above this the admin queues a task


def declared_types(keys: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """{key: (type, date_format)} of the declared non-text attributes (of `keys` when given)."""
    qs = AttributeDefinition.objects.exclude(type=AttributeDefinition.Type.TEXT)
    if keys is not None:
        qs = qs.filter(key__in=list(keys))
    return {key: (kind, fmt) for key, kind, fmt in qs.values_list("key", "type", "date_format")}


def contacts_with_attribute(key: str) -> int:
    return Contact.objects.filter(attributes__has_key=key).count()


def attribute_values_convert(*, definition_id: int, batch: int = CONVERT_BATCH) -> dict:
    """Rewrite the contacts' existing values of a declared attribute in its stored form
    ("05/02/1990" -> "1990-02-05"). Values already in that form stay; values that do not parse
    stay as they are and are counted (a person decides what to do with them). Each batch is
    locked while it is rewritten, so an import running meanwhile loses no other attribute.
    Records the outcome on the definition and returns it."""
    definition = AttributeDefinition.objects.get(pk=definition_id)
    convert = converter(definition.type, definition.date_format)
    key = definition.key
    converted = unchanged = unparsed = 0
    examples: list[str] = []
    last = 0
    while convert is not None:
        with transaction.atomic():
            rows = list(
                Contact.objects.select_for_update()
                .filter(attributes__has_key=key, pk__gt=last)
                .order_by("pk")
                .only("pk", "attributes")[:batch]
            )
            if not rows:
                break
            last = rows[-1].pk
            changed = []
            for contact in rows:
                value = contact.attributes.get(key)
                if value in (None, ""):
                    continue
                out = convert(str(value).strip())
                if out is None:
                    unparsed += 1
                    if len(examples) < 5:
                        examples.append(str(value)[:40])
                elif out == value:
                    unchanged += 1
                else:
                    contact.attributes[key] = out
                    changed.append(contact)
            Contact.objects.bulk_update(changed, ["attributes"])
            converted += len(changed)
    note = _(
        "Values converted: {converted}; already in the stored form: {unchanged}; left as they "
        "were because they do not parse: {unparsed}{examples}."
    ).format(
        converted=f"{converted:,}",
        unchanged=f"{unchanged:,}",
        unparsed=f"{unparsed:,}",
        examples=(" (" + ", ".join(f"“{e}”" for e in examples) + ")") if examples else "",
    )
    AttributeDefinition.objects.filter(pk=definition.pk).update(
        converted_at=timezone.now(), conversion_note=note[:300]
    )
    return {"converted": converted, "unchanged": unchanged, "unparsed": unparsed, "note": note}
