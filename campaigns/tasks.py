"""django-q2 tasks: thin. They take ids, and call one service (HackSoft styleguide)."""

import logging

logger = logging.getLogger("loa.tasks")


def campaign_drive_task(campaign_id: int) -> str:
    from campaigns.services import campaign_drive

    return campaign_drive(campaign_id=campaign_id)


def contact_import_task(import_id: int) -> None:
    from campaigns.importing import contact_import_run

    contact_import_run(import_id=import_id)


def scheduler_tick() -> dict:
    """Every minute: start due campaigns, restart idle drivers, reap stuck rows, reconcile."""
    from campaigns import services

    report = {
        "started": services.campaigns_start_due(),
        "kicked": services.campaigns_kick_running(),
        "reaped": services.messages_reap_stuck(),
        "reconciled": services.messages_reconcile(),
    }
    if any(report.values()):
        logger.info("scheduler tick: %s", report)
    return report
