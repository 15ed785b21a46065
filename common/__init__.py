"""What every app shares: the database backend, API helpers and pages, errors, authentication,
throttles, upload limits, the OpenAPI postprocessing, and the artifact store (storage.py: registry
versions, snapshots and runs' files, on local disk or S3). ``config`` wires them (settings, urls); no
app imports ``config`` (tests/test_tooling.py)."""
