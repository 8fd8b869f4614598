"""Contact tags: added and removed in bulk (the contact list's actions), registered in the Tag
vocabulary (how each key is written), shown by name.

A contact's tags are keys (campaigns.segment_rules.fold_key: "VIP" and "vip" are one tag) in
its JSON `tags` list; Tag keeps the first spelling seen for the builder and the contact page.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.db.models import QuerySet

from campaigns.models import Contact, Tag
from campaigns.segment_rules import MAX_TAG, fold_key, tag_names

CHUNK = 2000


def tags_register(names: list[str]) -> list[str]:
    """Record the tags in the vocabulary (an existing key keeps its spelling): their keys."""
    wanted = {}
    for name in names:
        key = fold_key(name)[:MAX_TAG]
        if key and key not in wanted:
            wanted[key] = " ".join(str(name).split())[:MAX_TAG]
    if wanted:
        Tag.objects.bulk_create(
            [Tag(key=k, name=n) for k, n in wanted.items()], ignore_conflicts=True
        )
    return list(wanted)


def tag_display(keys) -> list[str]:
    """Tag keys as people wrote them, in the contact's order."""
    keys = [k for k in keys or [] if isinstance(k, str)]
    names = dict(Tag.objects.filter(key__in=keys).values_list("key", "name"))
    return [names.get(k, k) for k in keys]


def contacts_tag(*, queryset: QuerySet, text: str, remove: bool = False) -> int:
    """Add (or remove) the tags written in `text` ("VIP, Online") to the contacts of
    `queryset`; the number of contacts changed. Set-based on PostgreSQL (a selection across
    every page may be a million contacts), in chunks elsewhere."""
    names = tag_names(text)
    keys = [fold_key(n)[:MAX_TAG] for n in names] if remove else tags_register(names)
    if not keys:
        return 0
    ids_sql, params = queryset.order_by().values("pk").query.sql_with_params()
    if connection.vendor == "postgresql":
        arr = json.dumps(keys)
        if remove:
            # jsonb - text[]: removes those strings from the array
            sql = (
                "UPDATE campaigns_contact SET tags = tags - %s::text[], updated_at = now()"
                f" WHERE id IN ({ids_sql}) AND tags ?| %s::text[]"
            )
            args = [keys, *params, keys]
        else:
            sql = (
                "UPDATE campaigns_contact SET updated_at = now(), tags = tags || (SELECT"
                " coalesce(jsonb_agg(k), '[]'::jsonb) FROM jsonb_array_elements(%s::jsonb) k"
                " WHERE NOT tags @> jsonb_build_array(k))"
                f" WHERE id IN ({ids_sql}) AND NOT tags @> %s::jsonb"
            )
            args = [arr, *params, arr]
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, args)
            return cur.rowcount
    changed = 0
    ids = list(queryset.order_by().values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        with transaction.atomic():
            batch = []
            for c in Contact.objects.filter(pk__in=ids[start : start + CHUNK]).only("id", "tags"):
                old = [t for t in c.tags if isinstance(t, str)] if isinstance(c.tags, list) else []
                new = (
                    [t for t in old if t not in keys]
                    if remove
                    else old + [k for k in keys if k not in old]
                )
                if new != old:
                    c.tags = new
                    batch.append(c)
            Contact.objects.bulk_update(batch, ["tags"], batch_size=500)
            changed += len(batch)
    return changed
