"""Sans-I/O ACD core: queues, routing and agent states as pure, deterministic code.

    engine = AcdEngine()
    commands = engine.handle(UpsertQueue(QueueConfig("sales")), now)
    ...
    engine.handle(Tick(), engine.next_deadline())

State + event + clock in, commands out; no asyncio, sockets, SQL or wall clock.
"""

from .commands import (
    AgentStateChanged,
    Announce,
    CancelOffer,
    Command,
    Connect,
    ExitQueue,
    ItemMoved,
    Offer,
    QueueLog,
    StartHold,
)
from .engine import AcdEngine
from .events import (
    AgentDeviceState,
    AgentLegLost,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentUnpause,
    CallArrived,
    CallEnded,
    CallLeft,
    CallTransferred,
    DtmfPressed,
    Event,
    MoveItem,
    OfferAnswered,
    OfferFailed,
    RemoveAgent,
    RemoveQueue,
    Tick,
    UpsertAgent,
    UpsertQueue,
)
from .model import AgentConfig, ConfigError, QueueConfig, QueueItem
from .views import AgentInfo, ItemInfo, OfferInfo, QueueInfo

__all__ = [
    "AcdEngine",
    "AgentConfig",
    "AgentDeviceState",
    "AgentInfo",
    "AgentLegLost",
    "AgentLogin",
    "AgentLogout",
    "AgentPause",
    "AgentStateChanged",
    "AgentUnpause",
    "Announce",
    "CallArrived",
    "CallEnded",
    "CallTransferred",
    "CallLeft",
    "CancelOffer",
    "Command",
    "ConfigError",
    "Connect",
    "DtmfPressed",
    "Event",
    "ExitQueue",
    "ItemInfo",
    "ItemMoved",
    "MoveItem",
    "Offer",
    "OfferAnswered",
    "OfferFailed",
    "OfferInfo",
    "QueueConfig",
    "QueueInfo",
    "QueueItem",
    "QueueLog",
    "RemoveAgent",
    "RemoveQueue",
    "StartHold",
    "Tick",
    "UpsertAgent",
    "UpsertQueue",
]
