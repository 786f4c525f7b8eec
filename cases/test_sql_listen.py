"""sql.listen_notify: does a NOTIFY from one session really reach another session that LISTENs?

Session A subscribes through the driver's own notification API (``Session.listen``: asyncpg ``add_listener``,
psycopg ``notifies()``, psycopg2 ``poll()`` + ``conn.notifies``; the SQLAlchemy layers reach the same API through
the raw driver connection). Session B sends ``pg_notify(channel, payload)``. A must receive exactly one
``(channel, payload)`` within 5 s, the non-ASCII payload intact.

``differs`` when nothing (or something else) arrives: behind a transaction-pooling PgBouncer the LISTEN belongs to
whichever server connection ran it, not to the client, so the detail says where the notification went instead.
"""

from __future__ import annotations

import time

from rowcheck import same_value

from dbmatrix.casekit import requires
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError

PAYLOAD = "payload ü ✓"
WAIT_S = 5.0
AFTER_S = 0.5  # how long A keeps listening after the first notification, to see that nothing else follows


def _where_it_went(channel: str, b: Session, b_got: list[tuple[str, str]] | DriverError) -> str:
    """Why A got nothing: did the notifier receive it, and does another client see A's LISTEN?"""
    parts = []
    if isinstance(b_got, DriverError):
        parts.append(f"the notifying session received it instead, and its driver failed to read it: {b_got}")
    elif b_got:
        parts.append(f"the notifying session received it instead: {b_got!r}")
    listening = b.execute("SELECT count(*) FROM pg_listening_channels() AS c WHERE c = :c", {"c": channel}).scalar()
    if listening:
        # A's LISTEN stayed with the server connection that ran it, which the pool then handed to B
        parts.append("the notifying session's next statement ran on a server connection LISTENing on the channel")
    return "; ".join(parts) or "no session received it"


@requires("listen_notify")
def test_listen_notify(cell):
    """A notification sent by another session reaches the listener exactly once, with its payload."""
    channel = cell.table("dbm_chan")  # unique per cell: pooled server connections may keep a LISTEN alive
    a, b = cell.connect(), cell.connect()
    try:
        a.listen(channel)
    except DriverError as exc:
        cell.unsupported(exc)
        return
    try:
        sent = time.perf_counter()
        # the notifier's own statement may receive it too (a pooler handed it the listening server connection)
        b.execute("SELECT pg_notify(:c, :p)", {"c": channel, "p": PAYLOAD})
        got = a.notifications(WAIT_S)
        latency_ms = round((time.perf_counter() - sent) * 1000.0, 3)
        if got:
            got += a.notifications(AFTER_S)
    except DriverError as exc:  # the driver failed to receive it (pg8000 and a non-ASCII payload)
        cell.unsupported(exc)
        return
    expected = [(channel, PAYLOAD)]
    metrics = {"latency_ms": latency_ms, "received": len(got)}
    if same_value(got, expected):
        cell.supported(f"received {got!r} {latency_ms:.0f} ms after NOTIFY", metrics=metrics)
    elif not got:
        try:
            b_got: list[tuple[str, str]] | DriverError = b.notifications(AFTER_S)
        except DriverError as exc:
            b_got = exc
        where = _where_it_went(channel, b, b_got)
        cell.differs(f"nothing arrived at the listener within {WAIT_S:.0f} s; {where}", metrics=metrics)
    else:
        cell.differs(f"received {got!r}, expected exactly {expected!r}", metrics=metrics)
