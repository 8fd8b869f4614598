"""Re-encrypt every stored provider secret with the first key of FIELD_ENCRYPTION_KEYS.

Key rotation (docs/OPERATIONS.md): put the new key first in FIELD_ENCRYPTION_KEYS (keep the old
one after it), restart, run this command, check with `--check`, then remove the old key.

Rows are read in id batches and written with a compare-and-set on the old ciphertext, so an admin
saving new credentials at the same moment is never overwritten with stale ones.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from providers import crypto
from providers.models import OfficialAccount, ProviderAccount

# (model, field holding the ciphertext)
ENCRYPTED_FIELDS = [
    (ProviderAccount, "secrets_encrypted"),
    (OfficialAccount, "secret_encrypted"),
]


def secrets_rotate(*, batch_size: int = 500, dry_run: bool = False) -> dict[str, dict[str, int]]:
    """Counts per model: rotated, current (already on the first key), empty, failed."""
    report: dict[str, dict[str, int]] = {}
    for model, field in ENCRYPTED_FIELDS:
        counts = {"rotated": 0, "current": 0, "empty": 0, "failed": 0, "failed_ids": []}
        last_id = 0
        while True:
            rows = list(
                model.objects.filter(pk__gt=last_id)
                .order_by("pk")
                .values_list("pk", field)[:batch_size]
            )
            if not rows:
                break
            last_id = rows[-1][0]
            for pk, token in rows:
                if not token:
                    counts["empty"] += 1
                    continue
                if crypto.is_current(token):
                    counts["current"] += 1
                    continue
                try:
                    new = crypto.rotate(token)
                except ImproperlyConfigured:
                    counts["failed"] += 1
                    counts["failed_ids"].append(pk)
                    continue
                if dry_run:
                    counts["rotated"] += 1
                    continue
                # Compare-and-set: skip a row someone re-saved since we read it (it is then
                # encrypted with the current first key already).
                changed = model.objects.filter(pk=pk, **{field: token}).update(**{field: new})
                counts["rotated" if changed else "current"] += 1
        report[model._meta.label] = counts
    return report


class Command(BaseCommand):
    help = (
        "Re-encrypt provider credentials and OA secrets with the first key of "
        "FIELD_ENCRYPTION_KEYS (run after adding a new key, before removing the old one)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be re-encrypted; write nothing.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit with an error if any secret is not on the first key yet "
            "(run before removing an old key).",
        )

    def handle(self, *args, **opts):
        try:
            crypto.primary()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        dry = opts["dry_run"] or opts["check"]
        report = secrets_rotate(batch_size=max(1, opts["batch_size"]), dry_run=dry)
        verb = "would re-encrypt" if dry else "re-encrypted"
        pending = failed = 0
        for label, c in report.items():
            self.stdout.write(
                f"{label}: {verb} {c['rotated']}, already on the first key {c['current']}, "
                f"empty {c['empty']}, undecryptable {c['failed']}"
                + (f" (ids {', '.join(map(str, c['failed_ids'][:20]))})" if c["failed"] else "")
            )
            pending += c["rotated"]
            failed += c["failed"]
        if failed:
            raise CommandError(
                f"{failed} secret(s) cannot be decrypted with any of FIELD_ENCRYPTION_KEYS: add "
                "the key they were made with back to the list, or re-enter those credentials."
            )
        if opts["check"] and pending:
            raise CommandError(
                f"{pending} secret(s) are not on the first key yet: run rotate_secrets."
            )
        self.stdout.write(self.style.SUCCESS("Done." if not dry else "Nothing written."))
