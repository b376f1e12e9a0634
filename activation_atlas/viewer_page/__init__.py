"""The run's self-contained static HTML viewer: the page (page.py) and its script and style (static/)."""
