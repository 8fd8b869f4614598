"""Contacts beyond the model: opt-outs (optout.py), segments (segments.py), exports (export.py),
the text contacts are searched by (search.py) and the contact import (importing/: files,
mapping, run, sinks, report)."""
