"""The send engine: everything that happens to a campaign after the wizard, one job a module.

Where each behaviour lives (a module imports only those above it in this list, or none):

- signals.py      message_statuses_changed: API messages' status changes, announced inside the
                  writing transaction to campaigns.api (which the engine may not import)
- keys.py         the idempotency key a message carries to the provider, and parsing it back
- audience.py     who a campaign sends to: the one definition of an audience
- reach.py        who the channel cannot reach (providers/reach.py): counted per country,
                  their messages skipped with the reason
- validation.py   the audience checked against the template before sending (nothing stored):
                  the wizard's summary, the report of failing rows, the preview's recipient
- policy.py       the sending policy: quiet hours and frequency caps (Decree 91/2020)
- leases.py       named time-limited locks (one driver for a rate-limited campaign, one pump)
- pacer.py        RatePacer: paces one driver's sends at a campaign's rate
- outage.py       a provider that cannot be reached: the breaker, campaign_outage
- dispatch.py     putting driver runs on the queue (how many drivers, the task path they run)
- materialize.py  one Message per recipient, template data frozen, in one set-based statement
- fallback.py     fallback chains: when a step's outcome falls back (provider codes, receipt
                  deadlines), building the next step's messages once; the campaign as a step sends it
- lifecycle.py    the campaign state machine and the verbs people use: send now, schedule,
                  pause, resume, cancel, retry failed; settling and completion, the failure-rate
                  auto-pause
- claim.py        claiming due messages (pending -> sending), opt-outs and caps checked at send
                  time, the template/channel/account re-checked per batch, attempts in flight
- results.py      recording a batch's provider answers onto the rows, in bulk
- send.py         one batch: build each provider request, send concurrently, record the results
- driver.py       campaign_drive: one driver run (claim, send, record, repeat), and why it stopped
- delivery.py     applying status events (webhooks, polls) to messages, monotonically
- reconcile.py    the reaper (rows stuck in sending) and reconciliation of unknown outcomes
- scheduler.py    the every-minute tick: due campaigns, idle drivers, the reaper, reconciliation

Correctness never comes from the queue (django-q2 redelivers tasks): it comes from each message's
own state. A message is claimed (pending -> sending) and the claim committed before any HTTP call;
results are written back only onto rows still in `sending`; statuses only move forward; counters
move with F() expressions in the same transaction as the row they count.
"""
