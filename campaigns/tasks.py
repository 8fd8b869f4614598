"""django-q2 tasks: thin. They take ids, and call one service (HackSoft styleguide).

Their dotted paths are stored in queued tasks and schedules ("campaigns.tasks.campaign_drive_task",
"campaigns.tasks.contact_import_task", "campaigns.tasks.scheduler_tick"): renaming one strands
what is already queued."""

from django_q.tasks import async_task

from campaigns.contacts.importing.run import contact_import_run
from campaigns.contacts.segment_index import segment_index_build
from campaigns.contacts.typed import attribute_values_convert
from campaigns.engine.driver import campaign_drive
from campaigns.engine.scheduler import campaigns_tick


def campaign_drive_task(campaign_id: int) -> str:
    # The plain string is stored as the task's result: it must unpickle whatever the code becomes.
    return campaign_drive(campaign_id=campaign_id).value


def contact_import_task(import_id: int) -> None:
    contact_import_run(import_id=import_id)
    # The segment index covers the new contacts now rather than at the next minute's run (until
    # then they are counted on the contacts table: exact, slower).
    async_task("campaigns.tasks.segment_index_build_task", group="segment-index")


def scheduler_tick() -> dict:
    """Every minute: start due campaigns, restart idle drivers, reap stuck rows, reconcile."""
    return campaigns_tick()


def attribute_values_convert_task(definition_id: int) -> dict:
    """A declared attribute's existing values rewritten in its stored form (many contacts)."""
    return attribute_values_convert(definition_id=definition_id)


def segment_index_build_task() -> dict:
    """Every minute and after a segment is saved: the segment index brought up to date."""
    return segment_index_build().as_dict()
