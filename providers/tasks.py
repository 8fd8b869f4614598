"""django-q2 tasks: thin, each calls one service."""

import logging

from providers.quota import oa_sync_all

logger = logging.getLogger("loa.tasks")


def oa_sync_all_task() -> list[str]:
    """Hourly (schedule from migration 0003): every account's Official Accounts, their quality
    and quota read again, and the daily quota given back after the reset."""
    lines = oa_sync_all()
    for line in lines:
        logger.info("OA sync: %s", line)
    return lines
