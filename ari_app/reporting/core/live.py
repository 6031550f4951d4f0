"""The live picture: the ACD engine's state now, beside today's figures from the records.

Pure: it takes the engine's read-only views and today's counters, and returns the JSON-ready
snapshot the stats API, the live stream, the wallboard and /metrics all show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ari_app.acd.core.views import AgentInfo, ItemInfo, QueueInfo

from .erlang import ErlangError, Forecast, Prediction, agents_needed, predict
from .stats import (
    AGENT_STATES,
    INTERVAL,
    AgentCounters,
    QueueCounters,
    agent_metrics,
    queue_metrics,
)

#: Agent states that are "working a call" for live occupancy.
_BUSY = ("on_call", "wrapup")


@dataclass(frozen=True)
class QueueToday:
    """Today's counters for one queue, and the series of its intervals for the charts."""

    totals: QueueCounters
    recent: QueueCounters  # the last hour or so: the forecast of the Erlang prediction
    series: Sequence[tuple[float, QueueCounters]] = ()
    recent_seconds: float = 3600.0  # how long ``recent`` covers


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def _metrics(d: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: _round(v, 4) for k, v in d.items()}


def patience_estimate(c: QueueCounters) -> float | None:
    """Mean caller patience, the maximum-likelihood estimate for exponential patience with
    censoring: total time callers spent waiting / callers who gave up (None without abandons)."""
    if c.abandoned <= 0:
        return None
    waited = c.wait_answered_sum + c.wait_abandoned_sum
    return waited / c.abandoned if waited > 0 else None


def erlang_view(recent: QueueCounters, today: QueueCounters, *, handle_time: float, threshold: float,
                target: float, agents: int, measured_sl: float | None,
                recent_seconds: float = 4 * INTERVAL) -> dict[str, Any] | None:
    """Predicted service level for the agents serving now, from the last hour's arrivals
    (Erlang A when callers gave up, with their estimated patience, else Erlang C)."""
    if recent.offered <= 0:
        return None
    aht = (today.talk_sum + today.hold_sum + today.wrap_sum) / today.handled if today.handled else handle_time
    patience = patience_estimate(today)
    result = _erlang(float(recent.offered), float(recent_seconds), round(max(aht, 1.0), 1), float(threshold),
                     float(target), None if patience is None else round(patience, 1), agents)
    if result is None:
        return None
    forecast, now, needed = result
    return {"model": now.model, "calls_per_hour": round(recent.offered * 3600 / recent_seconds, 1), "aht": round(forecast.aht, 1),
            "patience": _round(forecast.patience, 1), "agents": agents,
            "predicted_service_level": round(now.service_level, 4),
            "measured_service_level": _round(measured_sl, 4),
            "agents_needed": needed.agents, "target_service_level": target}


@lru_cache(maxsize=512)
def _erlang(calls: float, interval: float, aht: float, threshold: float, target: float, patience: float | None,
            agents: int) -> tuple[Forecast, Prediction, Prediction] | None:
    """Cached: the inputs change only when today's figures are re-read, while snapshots are
    built several times a second."""
    try:
        forecast = Forecast(calls=calls, interval=interval, aht=aht, threshold=threshold, target_sl=target,
                            patience=patience)
        return forecast, predict(forecast, agents), agents_needed(forecast)
    except ErlangError:
        return None


def queue_snapshot(info: QueueInfo, waiting: Sequence[ItemInfo], agents: Mapping[str, AgentInfo],
                   today: QueueToday | None, *, now: float, sl_target: float,
                   with_series: bool = False) -> dict[str, Any]:
    members = [agents[m] for m in info.members if m in agents]
    by_state = {s: 0 for s in AGENT_STATES}
    for a in members:
        by_state[a.status] = by_state.get(a.status, 0) + 1
    busy = sum(by_state[s] for s in _BUSY)
    ready = busy + by_state["available"] + by_state["ringing"]
    totals = today.totals if today else QueueCounters()
    metrics = queue_metrics(totals)
    calls_waiting = [i for i in waiting if i.item.kind != "callback"]
    out: dict[str, Any] = {
        "name": info.config.name,
        "waiting": len(calls_waiting),
        "callbacks_waiting": len(waiting) - len(calls_waiting),
        "longest_wait": round(max((now - i.joined_at for i in calls_waiting), default=0.0), 1),
        "agents": by_state,
        "logged_in": len(members) - by_state["logged_out"],
        "available": info.available,
        "serving": info.serving,
        "occupancy": _round(busy / ready if ready else None, 4),
        "sl_threshold": info.config.service_level_threshold,
        "today": {**totals.to_dict(), **_metrics(metrics)},
        "erlang": erlang_view(today.recent, totals, handle_time=info.handle_time,
                              threshold=info.config.service_level_threshold, target=sl_target,
                              agents=info.serving, measured_sl=metrics["service_level"],
                              recent_seconds=today.recent_seconds) if today else None,
    }
    if with_series and today is not None:
        out["series"] = [{"t": t, "service_level": _round(queue_metrics(c)["service_level"], 4),
                          "abandon_rate": _round(queue_metrics(c)["abandon_rate"], 4), "offered": c.offered}
                         for t, c in today.series]
    return out


def agent_snapshot(a: AgentInfo, today: AgentCounters | None, *, now: float) -> dict[str, Any]:
    counters = today or AgentCounters()
    return {
        "id": a.id,
        "state": a.status,
        "since": a.since,
        "in_state": round(max(0.0, now - a.since), 1),
        "pause_reason": a.pause_reason or None,
        "item_id": a.item_id,
        "queues": list(a.queues),
        "today": {**{k: _round(v, 1) if isinstance(v, float) else v for k, v in counters.to_dict().items()},
                  **_metrics(agent_metrics(counters))},
    }


def snapshot(queues: Sequence[QueueInfo], waiting: Mapping[str, Sequence[ItemInfo]],
             agents: Sequence[AgentInfo], today_queues: Mapping[str, QueueToday],
             today_agents: Mapping[str, AgentCounters], *, now: float, sl_target: float,
             with_series: bool = False) -> dict[str, Any]:
    by_id = {a.id: a for a in agents}
    states = {s: 0 for s in AGENT_STATES}
    for a in agents:
        states[a.status] = states.get(a.status, 0) + 1
    return {
        "at": now,
        "queues": [queue_snapshot(q, waiting.get(q.config.name, ()), by_id, today_queues.get(q.config.name),
                                  now=now, sl_target=sl_target, with_series=with_series) for q in queues],
        "agents": [agent_snapshot(a, today_agents.get(a.id), now=now) for a in agents],
        "agent_states": states,
    }
