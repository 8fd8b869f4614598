"""django-q2 tasks: thin, each calls one service."""

import logging

from templates_app.sync import templates_sync_all

logger = logging.getLogger("loa.tasks")


def templates_sync_all_task() -> list[dict]:
    """Daily (schedule from migration 0002): sync every provider's templates; templates Zalo
    disabled are flagged and announced (campaigns pauses the campaigns using them)."""
    reports = templates_sync_all()
    for report in reports:
        log = logger.warning if (report.errors or report.acted) else logger.info
        log("template sync: %s", report.message())
    return [r.as_dict() for r in reports]
