"""A local fake of every provider's HTTP API, for development, tests and benchmarks.

One threaded HTTP/1.1 (keep-alive) server on 127.0.0.1 speaks, under path prefixes:

  /esms/MainService.svc/json/...   eSMS: SendZaloMessage_V4_post_json, SendZaloMessage_V6,
                                   QueryZnsStatus, GetTemplate, GetZnsTemplateInfo, ZNS/GetListZOA,
                                   ZNS/GetQuota (providers.md §2)
  /esms-status/ZaloCallback/GetCallback   eSMS's callback replay host (status-sms.esms.vn)
  /etelecom/v1/{shop,partner}.Zalo/...    eTelecom: SendZNS, SendZNSJourney, GetMessage,
                                   ListMessages, ListTemplates, ListOA, UpdateShopOA (providers.md §1)
  /mmp/api/v1/...                  VNA/Metfone MMP at the paths Loa assumes
                                   (providers/mmp/assumed.py)

with configurable latency, an error rate (HTTP 500, hangs that the client sees as timeouts,
connection resets), an OA daily quota for eTelecom sends (Zalo's -144 once it is used up, until
new_day()), a count of calls per idempotency key (eSMS RequestId, eTelecom tracking_id,
MMP clientMessageId) so tests can prove "exactly one provider call per contact", and callbacks
in each provider's documented format delivered after a delay (eSMS: GET on the CallbackUrl of the
send; eTelecom: POST of the message object or of Zalo's user_received_message; MMP: POST of the
broadcast status payload, DELIVERED then READ).

Errors are injected *after* the request was processed (the message exists, the callback will
come): the worst case for a client, which must then reconcile rather than resend.

Before it takes a send, the fake checks it as strictly as the seeds state the contract (types,
eSMS's RequestId at most 50 characters and "True"/"False" IsJourney, Content-Type, eTelecom's
integer template_id, string template_data values and enum values, the Bearer key of the shop or
partner mode) and refuses a violation with the provider's documented error, so a test against
it fails for the right reason. Where the seeds are silent (every MMP body; an eSMS violation
without a documented CodeResult), the check or the answer is an assumption, and the code says
"assumed" at that line. `refusals` counts what was refused, by (provider, rule); `keys` makes a
wrong credential fail (any well-formed key passes otherwise).

Use it from tests:

    with FakeProviders(latency_ms=0) as fake:
        account.base_url = fake.url("esms") ...

or from a shell (in the project root):
    python -m bench.fake_provider --port 9100 --latency-ms 50 --error-rate 0

The modules: state.py (the knobs, what the fake remembers, the callbacks it owes), server.py
(the HTTP server and its routing), one module per provider API (esms.py, etelecom.py, mmp.py,
each a handler per endpoint), shared.py (the request and reply shapes those handlers share),
__main__.py (the command line).
"""

from bench.fake_provider.server import FakeProviders

__all__ = ["FakeProviders"]
