"""The anchor of bench/webhooks.py: what a developer would otherwise write for a provider's
status callback, a plain Django view that stores the callback with one raw
`INSERT ... ON CONFLICT DO NOTHING` and answers. Served by the same web server with the same
sizing as Loa (granian or gunicorn, bench/webhooks.py starts it), on Loa's database, through
`bench._webhook_anchor:application` with its own settings (bench/_webhook_anchor_settings.py).
Bench-only: the product's URLs never include it.

The table is the bench's own (anchor_table_create), dropped and made again before each run.
"""

from __future__ import annotations

import os

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

TABLE = "bench_webhook_anchor"


def anchor_table_create() -> None:
    """The anchor's table, empty: a key unique per callback, the raw query, the time."""
    pk = "bigserial PRIMARY KEY" if connection.vendor == "postgresql" else "integer PRIMARY KEY"
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(
            f"CREATE TABLE {TABLE} (id {pk}, dedupe_key varchar(120) NOT NULL UNIQUE, "
            "query text NOT NULL, received_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )


def anchor_rows() -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {TABLE}")
        return cur.fetchone()[0]


@csrf_exempt
def receive(request, token: str):
    # eSMS names each message's callback by its SMSID (providers.md §2.5).
    key = request.GET.get("SMSID", "")[:120]
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {TABLE} (dedupe_key, query) VALUES (%s, %s) "
            "ON CONFLICT (dedupe_key) DO NOTHING",
            [key, request.META.get("QUERY_STRING", "")],
        )
    return JsonResponse({"status": "received"})


urlpatterns = [path("webhooks/<str:token>/", receive)]


def _application():
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench._webhook_anchor_settings"
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# The web server's entry point (bench/webhooks.py: `bench._webhook_anchor:application`). Built
# only when the server asks for it: the bench process imports this module for the table helpers
# under Loa's own settings.
def __getattr__(name: str):
    if name == "application":
        app = _application()
        globals()["application"] = app
        return app
    raise AttributeError(name)
