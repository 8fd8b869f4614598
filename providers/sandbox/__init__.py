"""The sandbox provider: no HTTP call, realistic ids, realistic outcomes, and callbacks delivered
later through the real webhook path, so the demo and the tests behave like real life.

Modules: adapter.py (SandboxProvider: what happens to each message), outbox.py (SandboxCallback,
the callbacks waiting to be delivered). Delivering them is the webhooks room's job: after each
batch the adapter sends providers.signals.sandbox_callbacks_queued, and webhooks (which providers
may not import) answers by queueing its pump task.
"""
