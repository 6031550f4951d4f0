"""The dialer benchmark's month mode (bench/dialer/run.py): aggregation, rendering, and that the month
runs continue exactly the day-1/day-2 simulations."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "bench" / "dialer" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_dialer_run", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


def _row(bench, cell, pacer, day, *, talk_s, hours, idle_s, connects, run, window, worst):
    return bench.Row(
        cell=cell,
        pacer=pacer,
        day=day,
        vici=None if pacer == "predictive" else (3.0, 0.0, True),
        talk=talk_s / 60.0 / hours,
        abandon_run=run,
        abandon_window=window,
        abandon_worst=worst,
        abandon_worst_hour=float("nan"),
        abandon_true=0.0,
        idle_per_call=idle_s / connects,
        dials=0,
        humans=0,
        wall=0.0,
        talk_seconds=talk_s,
        idle_seconds=idle_s,
        connects=connects,
        logged_in_hours=hours,
    )


def test_month_summary_weights_by_hours_and_calls(bench) -> None:
    cell = bench.Cell(10, 0.25, 60.0, 8.0)
    rows = [
        _row(bench, cell, "predictive", 1, talk_s=80 * 60 * 30, hours=80, idle_s=1000, connects=100,
             run=0.02, window=0.02, worst=0.021),
        _row(bench, cell, "predictive", 2, talk_s=80 * 60 * 50, hours=80, idle_s=500, connects=300,
             run=0.035, window=0.028, worst=0.029),
        _row(bench, cell, "predictive", 3, talk_s=80 * 60 * 52, hours=80, idle_s=300, connects=200,
             run=0.01, window=0.022, worst=0.028),
    ]
    m = bench.month_summary(rows, cell, "predictive", 3)
    assert m is not None
    assert m.talk == pytest.approx((30 + 50 + 52) / 3)
    assert m.idle_per_call == pytest.approx(1800 / 600)
    assert (m.worst_day, m.worst_day_no) == (0.035, 2)
    assert m.worst_instant == 0.029
    assert m.abandon_window == 0.022  # the window at the end of the last day
    assert m.days_over_cap == 1
    assert m.daily_talk == pytest.approx((30.0, 50.0, 52.0))
    assert bench.month_summary(rows, cell, "predictive", 4) is None  # not all days ran
    assert bench.month_summary(rows, cell, "vicidial", 3) is None


def test_month_table_ratio_and_days_above(bench) -> None:
    cell = bench.Cell(10, 0.25, 60.0, 8.0)
    rows = []
    for day, (ours, vici) in enumerate(((30, 40), (50, 45), (52, 44)), start=1):
        rows.append(_row(bench, cell, "predictive", day, talk_s=80 * 60 * ours, hours=80, idle_s=1, connects=1,
                         run=0.02, window=0.02, worst=0.02))
        rows.append(_row(bench, cell, "vicidial", day, talk_s=80 * 60 * vici, hours=80, idle_s=1, connects=1,
                         run=0.031, window=0.01, worst=0.05))
    text = "\n".join(bench._month_tables(rows, [cell], 3))
    ratio = (30 + 50 + 52) / (40 + 45 + 44)
    assert f"**{ratio:.2f}** | 2 of 3 | 0.75-1.18 | 0.75 |" in text
    assert "| 30.0 / 50.0 / 52.0-52.0 | 0 |" in text  # ours: daily talk, no day above 3%
    assert "| 40.0 / 45.0 / 44.0-44.0 | 3 |" in text  # VICIdial: every day above 3%
    assert "| - | - | - | - |" in text  # no "ours, 30 days + 24 h" in this run
    for day in (1, 2):
        for kind in ("vicidial-default", "progressive"):
            rows.append(_row(bench, cell, kind, day, talk_s=80 * 60 * 40, hours=80, idle_s=1, connects=1,
                             run=0.0, window=0.0, worst=0.0))
    full = bench.render(rows, [cell], 2, 1.0, 1, 1.5, month_days=3)
    assert full.index("## The campaign over 3 days") < full.index("## Day 1")
    assert "VICIdial default and progressive run days 1-2 only" in full
    # pacers that did not run at all (`--pacers`) are not said to have run days 1-2
    only = [r for r in rows if r.pacer in ("predictive", "vicidial")]
    assert "run days 1-2 only" not in bench.render(only, [cell], 2, 1.0, 1, 1.5, month_days=3)


def test_month_table_with_the_daily_cap_pacer(bench) -> None:
    """`ours, 30 days + 24 h` gets its own rows and its ratio to tuned VICIdial and worst day in the
    summary, with or without the FTC-only `ours` in the same run."""
    cell = bench.Cell(10, 0.25, 60.0, 8.0)
    rows = []
    for day, (daily, vici, run) in enumerate(((30, 40, 0.01), (50, 45, 0.029), (52, 44, 0.03)), start=1):
        rows.append(_row(bench, cell, "predictive-daily", day, talk_s=80 * 60 * daily, hours=80, idle_s=1,
                         connects=1, run=run, window=0.02, worst=0.02))
        rows.append(_row(bench, cell, "vicidial", day, talk_s=80 * 60 * vici, hours=80, idle_s=1, connects=1,
                         run=0.031, window=0.01, worst=0.05))
    text = "\n".join(bench._month_tables(rows, [cell], 3))
    ratio = (30 + 50 + 52) / (40 + 45 + 44)
    assert "| **ours, 30 days + 24 h** | 44.0 | 2.00% | 3.00% (day 3) |" in text
    assert f"| - | - | - | - | - | - | - | - | **{ratio:.2f}** | 2 of 3 | 2.00% | 3.00% |" in text


def test_month_days_continue_the_two_day_runs(bench) -> None:
    cell = bench.Cell(10, 0.25, 60.0, 0.25)
    two = bench._run((cell, "predictive", (0.01, 0.0, False), cell.hours, 0, 2, 2))
    three = bench._run((cell, "predictive", (0.01, 0.0, False), cell.hours, 0, 3, 2))
    assert [r.pacer for r in two] == ["predictive", "predictive-iso", "predictive"]
    assert [(r.pacer, r.day) for r in three] == [(r.pacer, r.day) for r in two] + [("predictive", 3)]

    def same(r):  # repr: NaN fields compare equal
        return repr(dataclasses.replace(r, wall=0.0))

    assert [same(r) for r in three[:3]] == [same(r) for r in two]
    assert math.isnan(three[-1].abandon_worst_hour)  # month-only days skip the worst-hour scan
    assert not math.isnan(three[-1].abandon_worst)


def test_the_daily_cap_pacer_simulates_with_both_rules(bench) -> None:
    """The simulator builds its abandon ledger from the campaign in SimParams, so the daily-cap kind's
    params must carry both rules (with FTC alone there its runs were the FTC-only pacer's, to the digit)."""
    cell = bench.Cell(10, 0.25, 60.0, 8.0)
    assert [r.name for r in bench._params(cell, 1.0, 3, daily=True).campaign.abandon_rules] == ["FTC_TSR", "DAILY"]
    assert [r.name for r in bench._params(cell, 1.0, 3).campaign.abandon_rules] == ["FTC_TSR"]
    pacer = bench._pacer("predictive-daily", cell, None)
    assert [r.name for r in pacer.config.abandon_rules] == ["FTC_TSR", "DAILY"]
