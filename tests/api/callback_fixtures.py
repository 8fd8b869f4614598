"""Fixtures of the status-callback and API-admin tests (imported by those test modules; the
package's conftest.py belongs to the endpoint tests)."""

import pytest

from campaigns.api.models import ApiApplication, ApiMessage
from campaigns.models import Campaign
from tests.api.receiver import Receiver
from tests.factories import CampaignFactory, ContactFactory, message_for

SECRET = "whsec_test_0123456789"


@pytest.fixture
def receiver():
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture
def application(db, receiver):
    app = ApiApplication(name="Shop Callbacks", callback_url=receiver.url)
    app.callback_secret = SECRET
    app.save()
    return app


def api_message_for(application, *, status="sent", client_reference="ORDER-1", phone=None, **kw):
    """An API message as POST /api/v1/messages leaves it (a one-recipient campaign of origin
    "api", its message, the ApiMessage tying it to the application), in a given status."""
    contact = ContactFactory(**({"phone": phone} if phone else {}))
    campaign = CampaignFactory(origin=Campaign.Origin.API)
    msg = message_for(campaign, contact, status=status, **kw)
    msg.save()
    return ApiMessage.objects.create(
        application=application, campaign=campaign, message=msg, client_reference=client_reference
    )
