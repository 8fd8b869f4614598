"""The segment index (PostgreSQL): what it holds, and a build run in the foreground.

    manage.py segment_index            # status: ready or not, the slots and their attributes
    manage.py segment_index --build    # bring it up to date now (the minute schedule does it too)
    manage.py segment_index --reset --build   # after contacts were written with triggers off

The index covers the contacts up to an id; counts read it for those and the contacts table for
the newer ones, so they are exact at every step. The first build after migration 0026 on a
database that already holds contacts covers them all (10,000,000: docs/BENCHMARKS.md).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from campaigns.contacts.segment_index import (
    segment_index_build,
    segment_index_reset,
    segment_index_status,
)


class Command(BaseCommand):
    help = "Show the segment index's state, or build it now (--build)."

    def add_arguments(self, parser):
        parser.add_argument("--build", action="store_true", help="build it now, to the end")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="empty it first (contacts written with its triggers off: a load, a restore)",
        )
        parser.add_argument(
            "--seconds", type=float, default=24 * 3600.0, help="stop a build after this long"
        )

    def handle(self, *args, **options):
        if not segment_index_status().available:
            self.stdout.write("The segment index is PostgreSQL's: segments count the contacts.")
            return
        if options["reset"]:
            segment_index_reset()
            self.stdout.write("Emptied: counts read the contacts until the build covers them.")
        if options["build"]:
            report = segment_index_build(seconds=options["seconds"])
            if report.busy:
                self.stdout.write("Another build is running (the scheduled task): try later.")
            else:
                self.stdout.write(
                    f"Built: {report.rows:,} rows in {report.slices:,} slices,"
                    f" {report.seconds:,.1f} s; {'up to date' if report.done else 'not finished'}."
                )
        status = segment_index_status()
        self.stdout.write(
            f"Segment index: covers contacts up to id {status.covered_upto:,}"
            f" (newest contact: {status.newest_contact:,})"
            + ("; a refill of new slots is under way." if status.refilling else ".")
        )
        for slot in status.slots or []:
            ready = "ready" if slot["ready"] else "filling"
            self.stdout.write(f"  {slot['col']:<4} {slot['kind']:<7} {slot['key']}  ({ready})")
