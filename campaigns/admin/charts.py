"""The geometry of the admin's server-side charts: plain SVG drawn by templates
(config/templates/admin/loa/column_chart.html) from the numbers computed here. No JavaScript
library, no CDN. Used by the dashboard (admin index) and the campaign page's live panel."""

from __future__ import annotations

from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _


def _nice_max(value: float) -> int:
    """Round an axis maximum up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 5, 10):
        if value <= m * magnitude:
            return int(m * magnitude)
    return int(10 * magnitude)


def column_chart(
    points: list[dict], *, width: int = 600, height: int = 160, pad_left: int = 48
) -> dict:
    """Columns for [{"label", "value", "extra"?}] in a width x height box. "extra" (<= value) is
    drawn as an inner, darker column (e.g. delivered within sent)."""
    pad_top, pad_bottom = 8, 22
    plot_h = height - pad_top - pad_bottom
    plot_w = width - pad_left - 4
    top = _nice_max(max((p["value"] for p in points), default=0))
    n = max(1, len(points))
    slot = plot_w / n
    bar_w = min(48.0, max(1.0, slot * 0.7))  # a few buckets must not look like a wall
    bars = []
    label_every = max(1, n // 8)
    for i, p in enumerate(points):
        h = plot_h * p["value"] / top
        eh = plot_h * min(p.get("extra") or 0, p["value"]) / top
        x = pad_left + i * slot + (slot - bar_w) / 2
        bars.append(
            {
                "x": round(x, 1),
                "y": round(pad_top + plot_h - h, 1),
                "w": round(bar_w, 1),
                "h": round(h, 1),
                "ey": round(pad_top + plot_h - eh, 1),
                "eh": round(eh, 1),
                "label": p["label"],
                "value": p["value"],
                "extra": p.get("extra"),
                "show_label": i % label_every == 0,
                "lx": round(x + bar_w / 2, 1),
            }
        )
    ticks = [
        {"value": v, "y": round(pad_top + plot_h - plot_h * v / top, 1)} for v in (0, top // 2, top)
    ]
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "ticks": ticks,
        "axis_x": pad_left,
        "axis_y": pad_top + plot_h,
        "label_y": height - 6,
        "right": width - 4,
        "empty": not any(p["value"] for p in points),
    }


TIMELINE_TITLES = {
    10: _("Messages sent per 10 seconds"),
    30: _("Messages sent per 30 seconds"),
    60: _("Messages sent per minute"),
    300: _("Messages sent per 5 minutes"),
    900: _("Messages sent per 15 minutes"),
    3600: _("Messages sent per hour"),
    6 * 3600: _("Messages sent per 6 hours"),
    86400: _("Messages sent per day"),
}


def timeline_chart(timeline: dict) -> dict:
    """The campaign page's "sends over time" chart from campaign_send_timeline
    (campaigns.selectors.campaign)."""
    step = timeline.get("step") or 60
    # The language's named formats (config/formats): a day as every page writes it, a time
    # as H:i; seconds only when the buckets are shorter than a minute.
    if step >= 86400:
        label = lambda t: formats.date_format(t, "DATE_FORMAT")  # noqa: E731
    elif step >= 60:
        label = lambda t: formats.time_format(t, "TIME_FORMAT")  # noqa: E731
    else:
        label = lambda t: formats.time_format(t, "H:i:s")  # noqa: E731
    points = [
        {"label": label(timezone.localtime(b["start"])), "value": b["count"]}
        for b in timeline.get("buckets", [])
    ]
    chart = column_chart(points)
    chart["title"] = str(TIMELINE_TITLES.get(step, TIMELINE_TITLES[60]))
    chart["sampled"] = timeline.get("sampled", False)
    return chart
