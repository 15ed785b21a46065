"""What every app shares: the database backend, API helpers and pages, errors, authentication,
throttles, upload limits and the OpenAPI postprocessing. ``config`` wires them (settings, urls); no
app imports ``config`` (tests/test_tooling.py)."""
