"""No body or query string, however malformed, makes the webhook answer 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.registry import PROVIDERS
from tests.factories import ProviderAccountFactory

pytestmark = pytest.mark.django_db

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
KEYS = [
    "SMSID",
    "SendStatus",
    "SendSuccess",
    "SendFailed",
    "RequestId",
    "error_info",
    "TotalPrice",
    "msg_id",
    "status",
    "messageId",
    "clientMessageId",
    "cause",
    "event_name",
    "partnerids",
]


@pytest.fixture
def accounts(db):
    return {kind: ProviderAccountFactory(kind=kind) for kind in PROVIDERS}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300), json_values.map(lambda v: __import__("json").dumps(v).encode())
    ),
    query=st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=8), st.text(max_size=40), max_size=6
    ),
)
def test_never_500(client, accounts, body, query):
    for account in accounts.values():
        url = f"/webhooks/{account.webhook_token}/"
        r1 = client.post(
            url + "?" + "&".join(f"{k}={v}" for k, v in []),
            data=body,
            content_type="application/json",
            QUERY_STRING="",
        )
        r2 = client.get(url, query)
        assert r1.status_code < 500 and r2.status_code < 500
