"""The contact import, in the order a file goes through it: files.py reads it (encodings, XLSX
guards, rows), mapping.py maps its columns, run.py creates and runs the import, sinks.py saves
the rows (PostgreSQL COPY + set-based SQL, or batches), report.py counts and reports."""
