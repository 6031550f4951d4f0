"""Dialer pacing benchmark: our predictive pacer vs progressive vs VICIdial ADAPT_HARD_LIMIT.

Grid: 10 / 50 / 200 agents x live-answer rate 10 / 25 / 40 % x mean handle time 60 / 180 s. In each cell
the three pacers run the same simulated shift with the same seed. VICIdial is tuned per cell first
(on a different seed, shorter shift): the setting with the most talk time whose whole-run abandon
rate stays <= 3% is kept (if none does, the one with the lowest rate).

Each campaign runs ``--days`` consecutive days (default 2) with every pacer, and ours and the tuned
VICIdial (``--month-pacers``) go on for ``--month-days`` (default 30) days of the same campaign: the
month is what the 30-day abandon window and the talk-time target are judged on. Days 1 and 2 of the
month runs are the same simulations as the day-1 and day-2 rows (same seeds, same objects).

    .venv/bin/python bench/dialer/run.py --hours-200 4   # full grid -> bench/dialer/RESULTS.md
    .venv/bin/python bench/dialer/run.py --quick         # 10/50 agents, 2 h shifts, 2 days, no file written
    .venv/bin/python bench/dialer/run.py --cells 200a-10%-60s --month-days 3 --out /tmp/x.md   # cost probe
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ari_app.dialer.core import (
    DAY,
    HOUR,
    AbandonRule,
    CampaignConfig,
    LiveStats,
    Pacer,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptPacer,
    VicidialSettings,
)
from ari_app.dialer.sim import AgentProfile, LeadProfile, SimParams, SimResult, simulate

HERE = Path(__file__).resolve().parent

AGENTS = (10, 50, 200)
ANSWER = (0.10, 0.25, 0.40)
HANDLE = (60.0, 180.0)

# VICIdial settings tried per cell (auto_dial_level starts at 1.0, intensity 0 as shipped):
# (adaptive_maximum_level, adaptive_dl_diff_target as a fraction of the agents, available_only_ratio_tally)
VICI_GRID: tuple[tuple[float, float, bool], ...] = tuple(
    (mx, dd, False) for mx in (1.5, 2.0, 3.0, 5.0) for dd in (0.0, -0.1)
) + tuple((mx, 0.0, True) for mx in (2.0, 3.0, 4.0, 6.0))
VICI_DEFAULT = (3.0, 0.0, False)  # shipped defaults


@dataclass(frozen=True)
class Cell:
    agents: int
    answer: float
    handle: float
    hours: float

    @property
    def key(self) -> str:
        return f"{self.agents}a-{int(self.answer * 100)}%-{int(self.handle)}s"

    def seed(self, salt: int) -> int:
        return (self.agents * 1000 + int(self.answer * 100)) * 1000 + int(self.handle) + salt * 7919


def _campaign(cell: Cell, *, daily: bool = False) -> CampaignConfig:
    """The cell's campaign under the FTC rule; ``daily`` also holds every rolling 24 h to the same cap
    (the campaign option ``abandon_daily_cap``)."""
    rules = (AbandonRule.ftc_tsr(), AbandonRule.daily()) if daily else (AbandonRule.ftc_tsr(),)
    return CampaignConfig(campaign_id=cell.key, trunk_limit=cell.agents * 8, abandon_rules=rules)


def _params(cell: Cell, hours: float, day: int = 1, *, daily: bool = False) -> SimParams:
    # the simulator's abandon ledger is built from this campaign's rules: it must be the pacer's
    base = SimParams(campaign=_campaign(cell, daily=daily), agents=AgentProfile(cell.agents))
    return SimParams(
        campaign=base.campaign,
        agents=AgentProfile(cell.agents, handle_mean=cell.handle),
        leads=LeadProfile(human=cell.answer),
        shift_seconds=hours * HOUR,
        start=base.start + (day - 1) * DAY,
    )


Vici = tuple[float, float, bool]
PACERS = ("predictive", "predictive-daily", "vicidial", "vicidial-default", "progressive")
ROWS = ("predictive", "predictive-daily", "predictive-iso", "vicidial", "vicidial-default", "progressive")


def _pacer(kind: str, cell: Cell, vici: Vici | None) -> Pacer:
    if kind == "progressive":
        return ProgressivePacer()
    if kind.startswith("vicidial"):
        max_level, diff, available_only = vici or VICI_DEFAULT
        return VicidialAdaptPacer(
            VicidialSettings(
                auto_dial_level=1.0,
                adaptive_maximum_level=max_level,
                adaptive_dl_diff_target=round(diff * cell.agents),
                available_only_ratio_tally=available_only,
            )
        )
    return PredictivePacer(_campaign(cell, daily=kind == "predictive-daily"))


@dataclass(frozen=True)
class Row:
    cell: Cell
    pacer: str
    day: int
    vici: Vici | None
    talk: float
    abandon_run: float  # this shift alone
    abandon_window: float  # the 30-day window at the end of the shift (includes earlier days)
    abandon_worst: float  # rolling 30-day window at any instant of the shift
    abandon_worst_hour: float  # complete rolling 1 h windows
    abandon_true: float  # incl. AMD false positives (ground truth)
    idle_per_call: float
    dials: int
    humans: int
    wall: float
    budget_bound: float = float("nan")  # ours: share of the shift's decisions set by the abandon budget
    talk_seconds: float = 0.0
    idle_seconds: float = 0.0
    connects: int = 0
    logged_in_hours: float = 0.0
    window_end: float = 0.0  # when the shift's last call ended (epoch s)


def _bound_share(pacer: Pacer, before: tuple[float, float]) -> float:
    if not isinstance(pacer, PredictivePacer):
        return float("nan")
    decided = pacer.seconds_decided - before[0]
    return (pacer.seconds_budget_bound - before[1]) / decided if decided > 0 else float("nan")


def _counters(pacer: Pacer) -> tuple[float, float]:
    if isinstance(pacer, PredictivePacer):
        return (pacer.seconds_decided, pacer.seconds_budget_bound)
    return (0.0, 0.0)


# cell, pacer, vici, hours, salt, days, full_days: days after ``full_days`` (month-only days) skip the
# "ours iso" copy and the worst-hour scan (information only; it re-reads the whole ledger every day)
Task = tuple[Cell, str, Vici | None, float, int, int, int]


def _row(
    cell: Cell, kind: str, day: int, vici: Vici | None, res: SimResult, bound: float = float("nan"), *, full: bool = True
) -> Row:
    return Row(
        cell=cell,
        pacer=kind,
        day=day,
        vici=vici,
        talk=res.talk_minutes_per_hour,
        abandon_run=res.abandon_rate(),
        abandon_window=res.window_rate(),
        abandon_worst=res.worst_window(),
        abandon_worst_hour=res.worst_full_window(HOUR) if full and res.shift_seconds > HOUR else float("nan"),
        abandon_true=res.true_abandon_rate(),
        idle_per_call=res.idle_seconds_per_call,
        dials=res.dials,
        humans=res.human_connects + res.abandons - res.machine_abandons,
        wall=res.wall_seconds,
        budget_bound=bound,
        talk_seconds=res.talk_seconds,
        idle_seconds=res.idle_seconds,
        connects=res.connects,
        logged_in_hours=res.logged_in_hours,
        window_end=res.end,
    )


def _run(task: Task) -> list[Row]:
    """One pacer on one cell for ``days`` consecutive shifts of the same campaign (24 h apart):
    the pacer object, its statistics and the abandon ledger carry over from day to day.

    For our pacer, ``vici`` carries the abandon rate the tuned VICIdial reached in tuning; from day 2 a
    copy of the campaign (same history) also runs with that rate as its target ("ours iso") on days
    2..``full_days``."""
    cell, kind, vici, hours, salt, days, full_days = task
    iso_rate = vici[0] if kind == "predictive" and vici is not None else None
    pacer = _pacer(kind, cell, None if kind == "predictive" else vici)
    stats = LiveStats()
    rows: list[Row] = []
    ledger = None
    for day in range(1, days + 1):
        params = _params(cell, hours, day, daily=kind == "predictive-daily")
        seed = cell.seed(salt) + 104729 * day
        full = day <= full_days
        if 1 < day <= full_days and iso_rate is not None and isinstance(pacer, PredictivePacer):
            iso_pacer, iso_stats, iso_ledger = copy.deepcopy((pacer, stats, ledger))
            iso_pacer.target_fraction = max(0.01, min(1.0, iso_rate / iso_pacer.cap))
            before = _counters(iso_pacer)
            res = simulate(params, iso_pacer, seed, stats=iso_stats, ledger=iso_ledger)
            rows.append(_row(cell, "predictive-iso", day, (iso_rate, 0.0, False), res, _bound_share(iso_pacer, before)))
        before = _counters(pacer)
        res = simulate(params, pacer, seed, stats=stats, ledger=ledger)
        ledger = res.ledger
        rows.append(
            _row(cell, kind, day, None if kind == "predictive" else vici, res, _bound_share(pacer, before), full=full)
        )
    return rows


def _map(tasks: list[Task], jobs: int) -> list[Row]:
    # longest first so the workers finish together
    def cost(t: Task) -> float:
        return -t[0].agents * t[3] * t[5] / t[0].answer * (4.0 if t[1].startswith("predictive") else 1.0)

    order = sorted(range(len(tasks)), key=lambda i: cost(tasks[i]))
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        results = list(ex.map(_run, [tasks[i] for i in order], chunksize=1))
    out: list[list[Row]] = [[] for _ in tasks]
    for i, r in zip(order, results, strict=True):
        out[i] = r
    return [row for rows in out for row in rows]


def tune_vicidial(cells: Iterable[Cell], hours: float, jobs: int) -> dict[str, Row]:
    tasks: list[Task] = [
        (cell, "vicidial", v, min(hours, cell.hours / 4), 1, 1, 1) for cell in cells for v in VICI_GRID
    ]
    best: dict[str, Row] = {}
    for row in _map(tasks, jobs):
        k = row.cell.key
        cur = best.get(k)
        ok = row.abandon_run <= 0.03
        if cur is None:
            best[k] = row
            continue
        cur_ok = cur.abandon_run <= 0.03
        if (ok and not cur_ok) or (ok and cur_ok and row.talk > cur.talk) or (
            not ok and not cur_ok and row.abandon_run < cur.abandon_run
        ):
            best[k] = row
    return best


def _share(x: float) -> str:
    return "-" if x != x else f"{100 * x:.0f}%"


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.2f}%"


_NAMES = {
    "predictive": "**ours**",
    "predictive-daily": "**ours, 30 days + 24 h**",
    "predictive-iso": "ours iso",
    "vicidial": "VICIdial tuned",
    "vicidial-default": "VICIdial default",
    "progressive": "progressive",
}


def _vici_label(v: Vici, agents: int) -> str:
    mx, dd, avail = v
    return f" ({mx:g}/{round(dd * agents)}{'/avail' if avail else ''})"


def _day_tables(rows: list[Row], cells: list[Cell], day: int) -> list[str]:
    by = {(r.cell.key, r.pacer): r for r in rows if r.day == day}
    out = [
        "| agents | answer | AHT | shift | pacer | talk min/h | abandon shift | abandon 30-day window | worst instant | worst 1 h | true abandon | idle s/call | dials |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary = [
        "",
        "| agents | answer | AHT | talk ours/VICIdial tuned | ours/VICIdial default | ours/progressive | abandon (30-day window) ours / tuned / default | worst instant ours / tuned / default | iso: talk ours/tuned | iso: abandon shift ours / tuned | ours held by the budget |",
        "|---:|---:|---:|---:|---:|---:|---|---|---:|---|---:|",
    ]
    for cell in cells:
        for kind in ROWS:
            r = by.get((cell.key, kind))
            if r is None:
                continue
            name = _NAMES[kind]
            if kind == "vicidial" and r.vici is not None:
                name += _vici_label(r.vici, cell.agents)
            if kind == "predictive-iso" and r.vici is not None:
                name += f" (target {100 * r.vici[0]:.2f}%)"
            out.append(
                f"| {cell.agents} | {int(cell.answer * 100)}% | {int(cell.handle)} s | {cell.hours:g} h | {name} | "
                f"{r.talk:.1f} | {_pct(r.abandon_run)} | {_pct(r.abandon_window)} | {_pct(r.abandon_worst)} | "
                f"{_pct(r.abandon_worst_hour)} | {_pct(r.abandon_true)} | {r.idle_per_call:.1f} | {r.dials} |"
            )
        o, v, d, p = (by.get((cell.key, k)) for k in ("predictive", "vicidial", "vicidial-default", "progressive"))
        iso = by.get((cell.key, "predictive-iso"))
        if o and v and d and p:
            iso_cols = (
                f"{iso.talk / v.talk:.2f} | {_pct(iso.abandon_run)} / {_pct(v.abandon_run)}" if iso else "- | -"
            )
            summary.append(
                f"| {cell.agents} | {int(cell.answer * 100)}% | {int(cell.handle)} s | {o.talk / v.talk:.2f} | "
                f"{o.talk / d.talk:.2f} | {o.talk / p.talk:.2f} | "
                f"{_pct(o.abandon_window)} / {_pct(v.abandon_window)} / {_pct(d.abandon_window)} | "
                f"{_pct(o.abandon_worst)} / {_pct(v.abandon_worst)} / {_pct(d.abandon_worst)} | {iso_cols} | "
                f"{_share(o.budget_bound)} |"
            )
    return out + summary


@dataclass(frozen=True)
class Month:
    """One pacer's whole campaign over ``days`` consecutive days (from that pacer's daily rows)."""

    cell: Cell
    pacer: str
    vici: Vici | None
    days: int
    talk: float  # talk minutes per logged-in hour over all the days
    abandon_window: float  # the 30-day window at the end of the last day (the whole month if days <= 30)
    worst_day: float  # highest rate of a single day's shift
    worst_day_no: int
    worst_instant: float  # highest rate of the rolling 30-day window at any instant of any day
    idle_per_call: float
    days_over_cap: int  # days whose own rate was above 3%
    daily_talk: tuple[float, ...]


def month_summary(rows: list[Row], cell: Cell, pacer: str, days: int) -> Month | None:
    """The month figures of ``pacer`` in ``cell``, or None unless it ran all ``days`` days."""
    mine = sorted((r for r in rows if r.cell.key == cell.key and r.pacer == pacer and r.day <= days), key=lambda r: r.day)
    if len(mine) != days or days < 1:
        return None
    hours = sum(r.logged_in_hours for r in mine)
    connects = sum(r.connects for r in mine)
    worst = max(mine, key=lambda r: r.abandon_run)
    return Month(
        cell=cell,
        pacer=pacer,
        vici=mine[0].vici,
        days=days,
        talk=sum(r.talk_seconds for r in mine) / 60.0 / hours if hours else float("nan"),
        abandon_window=mine[-1].abandon_window,
        worst_day=worst.abandon_run,
        worst_day_no=worst.day,
        worst_instant=max(r.abandon_worst for r in mine),
        idle_per_call=sum(r.idle_seconds for r in mine) / connects if connects else float("inf"),
        days_over_cap=sum(r.abandon_run > 0.03 for r in mine),
        daily_talk=tuple(r.talk for r in mine),
    )


def _month_tables(rows: list[Row], cells: list[Cell], days: int) -> list[str]:
    out = [
        f"| agents | answer | AHT | shift | pacer | talk min/h ({days} days) | abandon {days} days (30-day window at the end) | worst day | worst instant (rolling 30-day) | idle s/call | talk day 1 / day 2 / days 3-{days} (min-max) | days > 3% |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    summary = [
        "",
        f"| agents | answer | AHT | talk ours/VICIdial tuned, {days} days | days ours above tuned | daily ratio min-max | day 1 ratio | ours min/h | abandon {days} days ours / tuned | worst day ours / tuned | worst instant ours / tuned | ours 30 days + 24 h: talk / tuned, {days} days | days above tuned | abandon {days} days | worst day |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for cell in cells:
        months = {k: month_summary(rows, cell, k, days) for k in PACERS}
        for kind in PACERS:
            m = months[kind]
            if m is None:
                continue
            name = _NAMES[kind]
            if kind == "vicidial" and m.vici is not None:
                name += _vici_label(m.vici, cell.agents)
            rest = m.daily_talk[2:]
            later = f" / {min(rest):.1f}-{max(rest):.1f}" if rest else ""
            daily = " / ".join(f"{x:.1f}" for x in m.daily_talk[:2]) + later
            out.append(
                f"| {cell.agents} | {int(cell.answer * 100)}% | {int(cell.handle)} s | {cell.hours:g} h | {name} | "
                f"{m.talk:.1f} | {_pct(m.abandon_window)} | {_pct(m.worst_day)} (day {m.worst_day_no}) | "
                f"{_pct(m.worst_instant)} | {m.idle_per_call:.1f} | {daily} | {m.days_over_cap} |"
            )
        o, od, v = months["predictive"], months["predictive-daily"], months["vicidial"]
        if v is None or (o is None and od is None):
            continue
        cols = [f"| {cell.agents} | {int(cell.answer * 100)}% | {int(cell.handle)} s |"]
        if o:
            ratios = [a / b for a, b in zip(o.daily_talk, v.daily_talk, strict=True)]
            above = sum(a > b for a, b in zip(o.daily_talk, v.daily_talk, strict=True))
            cols.append(
                f" **{o.talk / v.talk:.2f}** | "
                f"{above} of {days} | {min(ratios):.2f}-{max(ratios):.2f} | {ratios[0]:.2f} | {o.talk:.1f} | "
                f"{_pct(o.abandon_window)} / {_pct(v.abandon_window)} | {_pct(o.worst_day)} / {_pct(v.worst_day)} | "
                f"{_pct(o.worst_instant)} / {_pct(v.worst_instant)} |"
            )
        else:
            cols.append(" - | - | - | - | - | - | - | - |")
        if od:
            above = sum(a > b for a, b in zip(od.daily_talk, v.daily_talk, strict=True))
            cols.append(
                f" **{od.talk / v.talk:.2f}** | {above} of {days} | {_pct(od.abandon_window)} | {_pct(od.worst_day)} |"
            )
        else:
            cols.append(" - | - | - | - |")
        summary.append("".join(cols))
    return out + summary


def render(
    rows: list[Row],
    cells: list[Cell],
    days: int,
    elapsed: float,
    jobs: int,
    tune_hours: float,
    *,
    month_days: int = 0,
) -> str:
    lines = [
        "# Dialer pacing benchmark",
        "",
        "Generated by `bench/dialer/run.py` with the seeded simulator `ari_app.dialer.sim`. In each cell every",
        "pacer runs the same shift with the same seed. Abandon rule: FTC TSR, 3% of live answers over a rolling",
        "30-day window, per campaign. `abandon shift` is the rate of that shift alone; `abandon 30-day window`",
        "is the window at the end of the shift (on day 1 they are the same, and equal to the 24 h window);",
        "`worst instant` is the highest rate the rolling 30-day window reached at any instant of the shift,",
        "including its first minutes (our guarantee is about this one: it can never exceed 3%); `worst 1 h`",
        "is the worst complete rolling hour (information only); `true abandon` adds the live persons AMD hung",
        "up on (3% AMD false positives) that no pacer can see.",
        "",
        "Traffic: live answers as in the cell, answering machines 15%, busy 8%, the rest no answer; answer",
        "time lognormal (mean 10 s persons, 12 s machines, CV 0.35), ring timeout 20 s; AMD decides 2.5-3 s",
        "after answer (3% false positives hung up, 10% false negatives sent to an agent, 6 s lost); a person",
        "not connected within 2 s of the AMD decision is abandoned (safe-harbor message); handle time",
        "lognormal (CV 0.6) including 5 s wrap-up; trunks = 8 x agents; every pacer is called once a second.",
        "",
        "Pacers: **ours** = `PredictivePacer` with defaults (no per-cell tuning). **ours, 30 days + 24 h**",
        "(month run) = the same with a second rule holding every rolling 24 h to 3% as well (`AbandonRule.daily()`,",
        "the campaign option `abandon_daily_cap`), so no single day spends budget banked on earlier days. `VICIdial tuned` =",
        "ADAPT_HARD_LIMIT as published, dial level starting at 1.0, with the best of",
        "adaptive_maximum_level {1.5, 2, 3, 5} x adaptive_dl_diff_target {0, -10% of agents} and",
        "available_only_ratio_tally with maximum {2, 3, 4, 6}, chosen per cell on another seed",
        f"({tune_hours:g} h shift, 1 h for 200 agents) as the most talk with the shift's abandon rate <= 3%",
        "(label: max/diff[/avail]).",
        "`VICIdial default` = shipped settings (maximum 3.0, tally of ready + talking agents, intensity 0).",
        "`progressive` = one call per idle agent (never abandons). `ours iso` (day 2) = the same campaign",
        "history as ours, but with its abandon target set to the rate the tuned VICIdial reached in tuning,",
        "to compare talk at (about) the same abandon rate.",
        "`ours held by the budget` = share of the shift in which our pacer placed exactly what the hard",
        "abandon budget allowed (fewer than the trunks and leads allowed). With the guarantee the calls in",
        "flight beyond the idle agents never exceed c/(1-c) x the live answers in the window (1 per 32.3 at",
        "3%), so a new campaign ramps up only as fast as its own live answers arrive (`ari_app/dialer/core/ledger.py`).",
        "",
    ]
    month_kinds = sorted({r.pacer for r in rows if r.day > days}, key=PACERS.index) if month_days > days else []
    if month_kinds:
        lines += [
            f"## The campaign over {month_days} days",
            "",
            f"{', '.join(_NAMES[k] for k in month_kinds)} run the same campaign for {month_days} consecutive",
            "days, one shift a day, each day as day 2 continues day 1: same pacer object, learned",
            "statistics and abandon ledger; VICIdial's 'today' drop statistics restart at midnight and its",
            "dial level carries over; day d uses the same seed for every pacer. Days 1 and 2 are the",
            "simulations of the day-1 and day-2 tables below. `talk min/h` is all talk over all logged-in",
            f"hours of the {month_days} days; `abandon {month_days} days` is the FTC 30-day window at the end",
            "of the last day (with 30 days or fewer: the whole campaign); `worst day` is the highest rate of",
            "a single day's shift (not a window of the FTC rule; information); `worst instant` is the highest",
            "rate the rolling 30-day window reached at any instant of any day, day 1's first minutes",
            "included; `idle s/call` is all idle time over all calls connected; `days > 3%` counts the days",
            "whose own shift was above 3%. In the second table `days ours above tuned` compares each day's",
            "talk time, and `day 1 ratio` is the first day alone.",
        ]
        ran = {r.pacer for r in rows}
        others = [_NAMES[k] for k in PACERS if k not in month_kinds and k in ran]
        if others:
            lines += [
                f"{' and '.join(others)} run days 1-{days} only (tables below): they are not what the",
                "target compares with, and leaving them out keeps the month run shorter.",
            ]
        lines += [""]
        lines += _month_tables(rows, cells, month_days)
        lines += [""]
    lines += [
        "## Day 1: a new campaign (empty abandon ledger)",
        "",
    ]
    lines += _day_tables(rows, cells, 1)
    if days > 1:
        lines += [
            "",
            "## Day 2: the same campaign 24 h later",
            "",
            "Same pacer objects, learned statistics and abandon ledger (the 30-day window still holds day 1);",
            "VICIdial's 'today' drop statistics restart at midnight and its dial level carries over.",
            "",
        ]
        lines += _day_tables(rows, cells, 2)
    cpu = sum(r.wall for r in rows)
    lines += [
        "",
        f"{len(rows)} simulated shifts, {elapsed:.0f} s wall on {jobs} processes ({cpu:.0f} s of simulation CPU",
        "for the tables, plus the VICIdial tuning runs).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 and 50 agents, 2 h shifts, print only")
    ap.add_argument("--hours", type=float, default=8.0, help="shift length (default 8)")
    ap.add_argument("--hours-200", type=float, default=None, help="shift length for 200 agents")
    ap.add_argument("--days", type=int, default=2, help="consecutive days per campaign, every pacer (default 2)")
    ap.add_argument(
        "--month-days",
        type=int,
        default=None,
        help="days the --month-pacers go on for (default 30, 0 with --quick; 0 = no month table)",
    )
    ap.add_argument(
        "--month-pacers",
        default="predictive,predictive-daily,vicidial",
        help=f"pacers run for --month-days (default predictive,predictive-daily,vicidial; of {','.join(PACERS)})",
    )
    ap.add_argument(
        "--pacers",
        default=",".join(PACERS),
        help=f"pacers run at all (default all: {','.join(PACERS)}); a subset writes tables of those only",
    )
    ap.add_argument("--cells", default=None, help="only these cells, comma-separated keys like 200a-10%%-60s")
    ap.add_argument("--tune-hours", type=float, default=1.5, help="VICIdial tuning shift length")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    agents = AGENTS[:2] if args.quick else AGENTS
    hours = 2.0 if args.quick else args.hours
    h200 = args.hours_200 if args.hours_200 is not None else hours
    cells = [Cell(a, p, h, h200 if a >= 200 else hours) for a in agents for p in ANSWER for h in HANDLE]
    if args.cells:
        wanted = set(args.cells.split(","))
        cells = [c for c in cells if c.key in wanted]
        if not cells:
            ap.error(f"no cell matches {args.cells}")
    month_days = args.month_days if args.month_days is not None else (0 if args.quick else 30)
    month_pacers = tuple(k for k in args.month_pacers.split(",") if k)
    pacers = tuple(k for k in args.pacers.split(",") if k)
    if unknown := (set(month_pacers) | set(pacers)) - set(PACERS):
        ap.error(f"unknown pacer(s) {sorted(unknown)}")
    t0 = time.perf_counter()
    vici = tune_vicidial(cells, args.tune_hours, args.jobs) if {"vicidial", "predictive"} & set(pacers) else {}
    t_tune = time.perf_counter() - t0
    def setting(cell: Cell, kind: str) -> Vici | None:
        tuned = vici.get(cell.key)
        if tuned is None:
            return None
        if kind == "vicidial":
            return tuned.vici
        if kind == "predictive":
            return (max(tuned.abandon_run, 0.0003), 0.0, False)  # iso-abandon target for day 2+
        return None

    def days_for(kind: str) -> int:
        return max(args.days, month_days) if kind in month_pacers else args.days

    tasks: list[Task] = [
        (cell, kind, setting(cell, kind), cell.hours, 0, days_for(kind), args.days)
        for cell in cells
        for kind in PACERS
        if kind in pacers
    ]
    rows = _map(tasks, args.jobs)
    elapsed = time.perf_counter() - t0
    text = render(rows, cells, args.days, elapsed, args.jobs, args.tune_hours, month_days=month_days)
    print(text)
    print(f"(tuning {t_tune:.0f} s, total {elapsed:.0f} s)", file=sys.stderr)
    if not args.quick:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
