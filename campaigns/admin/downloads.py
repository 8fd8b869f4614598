"""Files the admin hands to the browser: a streamed CSV download, named after what it holds and
the local time it was made (campaign results, a campaign's failing rows, contacts)."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from campaigns.privacy.services import audit_record


def download_stamp() -> str:
    """The local time in a download's file name: 20250131-0930."""
    return timezone.localtime().strftime("%Y%m%d-%H%M")


def csv_download(chunks: Iterable[str], *, name: str) -> StreamingHttpResponse:
    """`chunks` of CSV text streamed as `<name>-<stamp>.csv` (memory flat whatever the size)."""
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{download_stamp()}.csv"'
    return response


def audit_on_done(
    request: HttpRequest, *, action: str, target=None, target_label: str = "", detail=None
):
    """The `on_done(rows, complete)` of a streamed export: appends the export to the audit trail
    with the rows actually sent, once the stream ends (complete=False: the download was cut)."""

    def done(rows: int, complete: bool) -> None:
        audit_record(
            action=action,
            request=request,
            target=target,
            target_type="" if target is not None else "export",
            target_label=target_label,
            rows=rows,
            detail={**(detail or {}), "complete": complete},
        )

    return done
