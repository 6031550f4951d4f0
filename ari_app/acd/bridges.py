"""Queue bridges are kept and reused, not made and destroyed for every call.

Why: a bridge per call costs two REST requests (create, destroy), Asterisk's work for both and
a BridgeDestroyed event; an empty mixing bridge in Asterisk costs nothing while it waits. A
bridge goes back to the pool only once Asterisk said it is empty (a ChannelLeftBridge whose
bridge snapshot has no channel left), so a new call never joins a bridge where the last call's
leg is still leaving. At most `IDLE_MAX` wait; a bridge that doesn't empty within `DRAIN_LIMIT`
of its call ending (a leg that never left) is destroyed by the audit, as are pooled bridges a
reconcile finds unknown (the previous run's, after a restart: see `audit.reconcile`).

Pure bookkeeping: the adapter makes the REST requests the methods ask for.
"""

from __future__ import annotations

#: Empty bridges kept for the next calls; beyond that a freed bridge is destroyed.
IDLE_MAX = 32
#: Seconds a finished call's bridge may take to empty before the audit destroys it.
DRAIN_LIMIT = 30.0


class BridgePool:
    def __init__(self) -> None:
        self.idle: list[str] = []
        #: Taken by a call (its item's `bridge_id`), and those of them seen empty meanwhile (both
        #: legs left before the call's end reached the adapter).
        self.in_use: set[str] = set()
        self._emptied: set[str] = set()
        #: Released by their call, waiting for Asterisk to say they are empty: since when.
        self.draining: dict[str, float] = {}

    def take(self) -> str | None:
        """An idle bridge for a new call, or None: the caller makes a new one (`adopt` it)."""
        if not self.idle:
            return None
        bridge_id = self.idle.pop()
        self.in_use.add(bridge_id)
        return bridge_id

    def adopt(self, bridge_id: str) -> None:
        """A bridge just made for a call joins the pool (it comes back when the call ends)."""
        self.in_use.add(bridge_id)

    def forget(self, bridge_id: str) -> None:
        """The bridge is destroyed by its call's owner (a transfer): the pool never takes it back."""
        self.in_use.discard(bridge_id)
        self._emptied.discard(bridge_id)
        self.draining.pop(bridge_id, None)

    def owns(self, bridge_id: str) -> bool:
        return bridge_id in self.in_use or bridge_id in self.draining or bridge_id in self.idle

    def left(self, bridge_id: str, channels_left: int) -> bool:
        """A channel left one of our bridges. True: destroy the bridge (it emptied after its
        call and the pool is full)."""
        if channels_left:
            return False
        if bridge_id in self.draining:
            del self.draining[bridge_id]
            return not self._keep(bridge_id)
        if bridge_id in self.in_use:
            self._emptied.add(bridge_id)
        return False

    def release(self, bridge_id: str, now: float, *, empty: bool = False) -> bool:
        """The call is over. A bridge seen empty, or that never had a channel (`empty`), is idle
        again at once; else it waits for its last leg to leave (`left`). True: destroy it (the
        pool is full)."""
        self.in_use.discard(bridge_id)
        if empty or bridge_id in self._emptied:
            self._emptied.discard(bridge_id)
            return not self._keep(bridge_id)
        self.draining[bridge_id] = now
        return False

    def _keep(self, bridge_id: str) -> bool:
        if len(self.idle) >= IDLE_MAX:
            return False
        self.idle.append(bridge_id)
        return True

    def stale(self, now: float) -> list[str]:
        """Bridges whose last leg never left: forgotten here, to be destroyed."""
        old = [b for b, since in self.draining.items() if now - since > DRAIN_LIMIT]
        for b in old:
            del self.draining[b]
        return old

    def forget_unused(self) -> None:
        """After a (re)connect nothing idle or draining is trusted (Asterisk may have restarted,
        events may have been missed): the reconcile destroys them if they still exist."""
        self.idle.clear()
        self.draining.clear()
        self._emptied &= self.in_use
