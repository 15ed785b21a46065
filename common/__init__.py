"""What every app shares: the database backend, API helpers, errors and authentication (config wires them)."""
