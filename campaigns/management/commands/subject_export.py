"""manage.py subject_export <phone> [--format xlsx|json] [--output FILE]: everything Loa holds about
a phone (any format) in one file, as the contact page's "Export this person's data" writes it. The
export is recorded in the audit trail (actor "system:manage.py" unless --actor names a user)."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from campaigns.privacy.subject import FORMATS, subject_export
from providers.shared.errors import Refused


class Command(BaseCommand):
    help = "Export everything Loa holds about a phone number (subject access) to XLSX or JSON."

    def add_arguments(self, parser):
        parser.add_argument("phone", help="The phone in any format: 0912345678, +84912345678")
        parser.add_argument("--format", choices=FORMATS, default="xlsx")
        parser.add_argument("--output", help="File to write (default: a name in this folder).")
        parser.add_argument("--actor", help="Username recorded in the audit trail.")

    def handle(self, *args, **opts):
        actor = "system:manage.py"
        if opts["actor"]:
            user = get_user_model().objects.filter(username=opts["actor"]).first()
            if user is None:
                raise CommandError(f"No user named {opts['actor']!r}.")
            actor = user
        try:
            result = subject_export(phone=opts["phone"], fmt=opts["format"], actor=actor)
        except Refused as exc:
            raise CommandError(str(exc)) from exc
        path = Path(opts["output"] or result.filename)
        path.write_bytes(result.content)
        self.stdout.write(f"{path}: {result.rows} rows ({opts['format']}).")
