"""Django's PostgreSQL backend with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request: on the
labeling loop that is one round trip in eight. An idle connection's socket has nothing to read unless
the server wrote to it, and a server that drops a connection (restart, ``pg_terminate_backend``, the
idle-in-transaction timeout) writes a termination notice or closes it. So poll the socket, and send
``SELECT 1`` only when something is there.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        conn = self.connection
        if conn is None or conn.closed:
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):  # the socket is gone
            return False
        return not readable or super().is_usable()
