"""django-q2 tasks of the automations room: thin (DESIGN's style).

The dotted path "campaigns.automations.tasks.automations_tick_task" is stored in the minutely
schedule (migration 0002): renaming it strands the schedule."""

from campaigns.automations.services import automations_tick


def automations_tick_task() -> dict:
    """Every minute: run the due occurrences of every active automation."""
    return automations_tick()
