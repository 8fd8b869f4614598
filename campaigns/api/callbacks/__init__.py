"""Status callbacks to the client: every status change of an API message, POSTed to the
application's callback URL, signed, retried with backoff for 24 hours.

- CallbackDelivery (in campaigns/api/models.py): the outbox row, one per (message, change), and
               its delivery log
- signing.py   the signature (HMAC-SHA256 over timestamp + "." + body) and its check
- services.py  the outbox insert (the engine's message_statuses_changed receiver: one INSERT),
               sending what is due (a batch, concurrently, under a lease), the retry schedule,
               giving up after 24 hours, resending from the admin
- tasks.py     the django-q2 tasks: the pump woken after each commit, and the minutely tick
- receivers.py connecting the receiver (ApiConfig.ready)
- admin.py     the delivery log (read-only) and its "resend" action
"""
