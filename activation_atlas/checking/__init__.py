"""Checking a finished run: its manifest (every kept file's hash and judged figures) and `verify`,
which compares a run with a reference manifest (python -m activation_atlas.checking.verify)."""
