"""may_dial: calling windows in the lead's timezone (DST, weekdays), DNC, attempts, retries, 72 h block."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.dialer.core import (
    CallingHours,
    CallOutcome,
    CampaignConfig,
    ComplianceGate,
    DialCheck,
    Lead,
    may_dial,
    record_attempt,
)

NY = "America/New_York"
CFG = CampaignConfig("c", ring_timeout=20.0)


def epoch(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, tz: str = NY) -> float:
    return datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo(tz)).timestamp()


def lead(**kw: object) -> Lead:
    base: dict[str, object] = {"lead_id": "l1", "phone": "+12125550100", "tz": NY}
    return Lead(**(base | kw))  # type: ignore[arg-type]


def test_window_edges_local_time() -> None:
    # 2025-06-10 is a Tuesday (EDT, UTC-4)
    assert may_dial(lead(), epoch(2025, 6, 10, 8, 0), CFG) == (True, DialCheck.OK)
    assert may_dial(lead(), epoch(2025, 6, 10, 7, 59, 59), CFG) == (False, DialCheck.OUTSIDE_CALLING_HOURS)
    # the call must still be inside the window when it can last be answered (now + ring_timeout)
    assert may_dial(lead(), epoch(2025, 6, 10, 20, 59, 39), CFG)[0]
    assert may_dial(lead(), epoch(2025, 6, 10, 20, 59, 41), CFG) == (False, DialCheck.OUTSIDE_CALLING_HOURS)
    # same UTC instant is fine for New York but too early in Los Angeles
    t = epoch(2025, 6, 10, 9, 0)
    assert may_dial(lead(), t, CFG)[0]
    assert may_dial(lead(tz="America/Los_Angeles"), t, CFG) == (False, DialCheck.OUTSIDE_CALLING_HOURS)


def test_dst_transitions() -> None:
    # Spring forward: 2025-03-09 02:00 EST -> 03:00 EDT. 08:00 local is 12:00 UTC (not 13:00).
    spring = datetime(2025, 3, 9, 12, 0, tzinfo=UTC).timestamp()
    assert may_dial(lead(), spring, CFG)[0]
    assert not may_dial(lead(), spring - 1, CFG)[0]
    # Fall back: 2025-11-02 02:00 EDT -> 01:00 EST. 08:00 local is 13:00 UTC (not 12:00).
    fall = datetime(2025, 11, 2, 13, 0, tzinfo=UTC).timestamp()
    assert may_dial(lead(), fall, CFG)[0]
    assert not may_dial(lead(), fall - 1, CFG)[0]
    # 21:00 local on the fall-back day is 2025-11-03 02:00 UTC
    close = datetime(2025, 11, 3, 2, 0, tzinfo=UTC).timestamp()
    assert may_dial(lead(), close - 21, CFG)[0]
    assert not may_dial(lead(), close - 19, CFG)[0]


def test_weekday_windows_and_midnight() -> None:
    hours = CallingHours.weekly(
        {"monday": ("09:00", "20:00"), "saturday": ("10:00", "14:00"), "sunday": ("00:00", "00:30")}
    )
    cfg = CampaignConfig("c", calling_hours=hours)
    monday_0830 = epoch(2025, 6, 9, 8, 30)
    assert not may_dial(lead(), monday_0830, cfg)[0]
    assert may_dial(lead(), epoch(2025, 6, 9, 9, 0), cfg)[0]
    assert not may_dial(lead(), epoch(2025, 6, 10, 12, 0), cfg)[0]  # tuesday closed
    assert may_dial(lead(), epoch(2025, 6, 14, 13, 0), cfg)[0]  # saturday
    assert not may_dial(lead(), epoch(2025, 6, 14, 14, 0), cfg)[0]
    assert may_dial(lead(), epoch(2025, 6, 15, 0, 10), cfg)[0]  # sunday 00:10
    # Saturday 23:59:50: the answer window would cross into Sunday -> not allowed
    assert not may_dial(lead(), epoch(2025, 6, 14, 23, 59, 50), cfg)[0]


def test_checks_and_reasons() -> None:
    t = epoch(2025, 6, 10, 12, 0)
    dnc = {"+12125550100"}
    assert may_dial(lead(), t, CFG, dnc) == (False, DialCheck.DNC)
    assert may_dial(lead(), t, CFG, lambda p: p.endswith("0100")) == (False, DialCheck.DNC)
    assert may_dial(lead(attempts=CFG.max_attempts), t, CFG) == (False, DialCheck.MAX_ATTEMPTS)
    assert may_dial(lead(retry_not_before=t + 1), t, CFG) == (False, DialCheck.RETRY_NOT_BEFORE)
    assert may_dial(lead(retry_not_before=t), t, CFG)[0]
    assert may_dial(lead(closed=True), t, CFG) == (False, DialCheck.CLOSED)
    assert may_dial(lead(tz="Mars/Olympus"), t, CFG) == (False, DialCheck.UNKNOWN_TIMEZONE)
    assert may_dial(lead(tz=""), t, CFG) == (False, DialCheck.UNKNOWN_TIMEZONE)


def test_abandon_recall_block_72h_unless_agent_reserved() -> None:
    t = epoch(2025, 6, 10, 12, 0)
    ab = lead(last_abandoned_at=t - 71 * 3600)
    assert may_dial(ab, t, CFG) == (False, DialCheck.ABANDON_RECALL_BLOCK)
    assert may_dial(ab, t, CFG, agent_reserved=True) == (True, DialCheck.OK)
    assert may_dial(lead(last_abandoned_at=t - 72 * 3600), t, CFG)[0]


def test_record_attempt() -> None:
    t = epoch(2025, 6, 10, 12, 0)
    after = record_attempt(lead(), CallOutcome.BUSY, t, CFG)
    assert after.attempts == 1 and after.retry_not_before == t + CFG.retry.delay(CallOutcome.BUSY)
    ab = record_attempt(lead(), CallOutcome.ABANDONED, t, CFG)
    assert ab.last_abandoned_at == t and not may_dial(ab, t + 3600, CFG)[0]
    done = record_attempt(lead(), CallOutcome.HUMAN, t, CFG)
    assert done.closed and may_dial(done, t + 10 * 86400, CFG) == (False, DialCheck.CLOSED)


def test_gate_select_keeps_order_and_limit() -> None:
    t = epoch(2025, 6, 10, 12, 0)
    leads = [lead(lead_id=str(i), phone=f"+1212555{i:04d}") for i in range(10)]
    gate = ComplianceGate(CFG, dnc={"+12125550003"})
    chosen = gate.select(leads, 4, t)
    assert [x.lead_id for x in chosen] == ["0", "1", "2", "4"]
    assert gate.select(leads, 0, t) == []


ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    t=st.floats(min_value=1.6e9, max_value=1.9e9, allow_nan=False),
    tz=st.sampled_from(ZONES),
    attempts=st.integers(0, 8),
    retry_off=st.one_of(st.none(), st.floats(-1e6, 1e6)),
    abandon_off=st.one_of(st.none(), st.floats(0, 1e6)),
    on_dnc=st.booleans(),
    reserved=st.booleans(),
    start_h=st.integers(0, 22),
    length_h=st.integers(1, 10),
)
def test_may_dial_property(
    t: float,
    tz: str,
    attempts: int,
    retry_off: float | None,
    abandon_off: float | None,
    on_dnc: bool,
    reserved: bool,
    start_h: int,
    length_h: int,
) -> None:
    end_h = min(24, start_h + length_h)
    end = "23:59:59.999999" if end_h == 24 else f"{end_h:02d}:00"
    cfg = CampaignConfig("c", calling_hours=CallingHours.daily(f"{start_h:02d}:00", end))
    ld = lead(
        tz=tz,
        attempts=attempts,
        retry_not_before=None if retry_off is None else t + retry_off,
        last_abandoned_at=None if abandon_off is None else t - abandon_off,
    )
    dnc = {ld.phone} if on_dnc else set()
    ok, reason = may_dial(ld, t, cfg, dnc, agent_reserved=reserved)
    local = datetime.fromtimestamp(t, tz=UTC).astimezone(ZoneInfo(tz))
    local_end = datetime.fromtimestamp(t + cfg.ring_timeout, tz=UTC).astimezone(ZoneInfo(tz))

    def in_window(x: datetime) -> bool:
        sod = x.hour * 3600 + x.minute * 60 + x.second + x.microsecond / 1e6
        return start_h * 3600 <= sod < (end_h * 3600 if end_h < 24 else 86400 - 1e-6)

    expected = (
        not on_dnc
        and attempts < cfg.max_attempts
        and (retry_off is None or not t < t + retry_off)
        and (reserved or abandon_off is None or not t < (t - abandon_off) + cfg.abandon_recall_block)
        and in_window(local)
        and in_window(local_end)
        and local.date() == local_end.date()
    )
    assert ok == expected, (reason, local, local_end)
    assert ok == (reason is DialCheck.OK)
