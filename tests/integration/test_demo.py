"""The README's main command: `ari-app demo --duration 60` runs a small contact center on its own
sandbox instance and ends by itself with a summary computed from the records."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

pytestmark = pytest.mark.integration


def _int(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    assert m, f"summary line missing: {pattern!r}\n{text}"
    return int(m.group(1))


async def test_demo_runs_for_its_duration_and_prints_a_sane_summary(sandbox):
    # `sandbox` only makes sure the cached Asterisk root exists; the demo runs its own instance.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_app", "demo", "--duration", "60", "--rate", "10", "--seed", "7",
        "--port", "0", "--instance", "demo-test", "--ari-port", "28188", "--pg-port", "25533", "--status-every", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
    out_b, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    out = out_b.decode(errors="replace")
    assert proc.returncode == 0, out
    assert "=== demo summary" in out, out
    calls = _int(r"calls: (\d+)", out)
    answered = _int(r"answered: (\d+)", out)
    abandoned = _int(r"abandoned: (\d+)", out)
    assert calls >= 3 and answered >= 1 and answered + abandoned <= calls, out
    sl = float(re.search(r"service level .*?: ([\d.]+)%", out).group(1))  # type: ignore[union-attr]
    assert 0.0 <= sl <= 100.0
    assert _int(r"campaign: dials (\d+)", out) >= 1, out
    assert re.search(r"click-to-call: (connected|completed)", out), out
