"""django-q2 tasks: thin, each calls one service."""

import logging

logger = logging.getLogger("loa.tasks")


def templates_sync_all_task() -> list[dict]:
    """Daily (schedule from migration 0002): sync every provider's templates; templates Zalo
    disabled are flagged and the campaigns using them paused."""
    from templates_app.services import templates_sync_all

    reports = templates_sync_all()
    for report in reports:
        log = logger.warning if (report.errors or report.paused_campaigns) else logger.info
        log("template sync: %s", report.message())
    return [r.as_dict() for r in reports]


def templates_sync_task(account_id: int) -> dict:
    """One account's sync, for the admin when it should not wait on the provider."""
    from providers.models import ProviderAccount
    from templates_app.services import templates_sync

    return templates_sync(account=ProviderAccount.objects.get(pk=account_id)).as_dict()
