"""`llm-input explore`: a local page and JSON API over run folders (see server.py)."""
