"""The names case modules, tests and extensions import: the adapter and session protocol in one place.

Each concern lives in a module of its own: ``protocol`` (adapters, layers, ``ConnectInfo``, ``Result``),
``session`` / ``async_session`` (the session protocol), ``runners`` (threads and event loops that own sessions),
``normalise`` (driver exceptions as ``DriverError``), ``dbapi`` (what blocking DBAPI drivers share).
"""

from __future__ import annotations

from ..engines.base import LOCK_TIMEOUT_S, STATEMENT_TIMEOUT_S
from .async_session import AsyncSession, aend_then_restore
from .dbapi import DBAPISession, cursor_result, fetch_batches, translate
from .normalise import default_normalise, driver_finding
from .protocol import (
    CLOSE_BOUND_S,
    CONNECT_TIMEOUT_S,
    HARNESS_DEADLINE_S,
    ConnectInfo,
    DriverAdapter,
    Layer,
    Notifier,
    Result,
    begin_statements,
    with_options,
)
from .runners import LoopOwner, LoopThread, ThreadOwner
from .session import Session, end_then_restore

__all__ = [
    "CLOSE_BOUND_S", "CONNECT_TIMEOUT_S", "HARNESS_DEADLINE_S", "LOCK_TIMEOUT_S", "STATEMENT_TIMEOUT_S",
    "AsyncSession", "ConnectInfo", "DBAPISession", "DriverAdapter", "Layer", "LoopOwner", "LoopThread", "Notifier",
    "Result", "Session", "ThreadOwner", "aend_then_restore", "begin_statements", "cursor_result",
    "default_normalise", "driver_finding", "end_then_restore", "fetch_batches", "translate", "with_options",
]
