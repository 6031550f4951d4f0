"""Thin, typed asyncio client for Asterisk's REST Interface (ARI).

``AriClient`` bundles ``AriRest`` (typed REST calls), ``EventStream`` (the reconnecting event
websocket) and in-order event dispatch with waiters. Errors are typed (``errors.py``);
``is_gone`` tells "the channel just hung up" from real failures.
"""

from .client import AriClient, Handler, Predicate, Waiter, new_id
from .errors import (
    AriAuthError,
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriHttpError,
    AriNotFound,
    AriOriginateFailed,
    AriUnprocessable,
    is_gone,
)
from .events import (
    ClientConnected,
    ClientDisconnected,
    Event,
    bridge_id_of,
    channel_id_of,
    parse_event,
    playback_id_of,
)
from .models import (
    Application,
    AsteriskInfo,
    AsteriskPing,
    Bridge,
    CallerID,
    Channel,
    DeviceState,
    DialplanCEP,
    Endpoint,
    LiveRecording,
    Module,
    Playback,
    StoredRecording,
    Variable,
)
from .rest import AriRest
from .stream import EventStream

__all__ = [
    "AriAuthError",
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriConnectionError",
    "AriError",
    "AriHttpError",
    "AriNotFound",
    "AriOriginateFailed",
    "AriRest",
    "AriUnprocessable",
    "Application",
    "AsteriskInfo",
    "AsteriskPing",
    "Bridge",
    "CallerID",
    "Channel",
    "ClientConnected",
    "ClientDisconnected",
    "DeviceState",
    "DialplanCEP",
    "Endpoint",
    "Event",
    "EventStream",
    "Handler",
    "LiveRecording",
    "Module",
    "Playback",
    "Predicate",
    "StoredRecording",
    "Variable",
    "Waiter",
    "bridge_id_of",
    "channel_id_of",
    "is_gone",
    "new_id",
    "parse_event",
    "playback_id_of",
]
