"""The shell's mapping of Asterisk device states onto the core's."""

from __future__ import annotations

from ari_app.acd.devices import core_state


def test_asterisk_device_states_map_onto_the_core() -> None:
    assert {s: core_state(s) for s in ("NOT_INUSE", "UNKNOWN", "INUSE", "BUSY", "RINGING", "RINGINUSE",
                                       "ONHOLD", "UNAVAILABLE", "INVALID")} == {
        "NOT_INUSE": "idle", "UNKNOWN": "idle", "INUSE": "inuse", "BUSY": "inuse", "RINGING": "inuse",
        "RINGINUSE": "inuse", "ONHOLD": "inuse", "UNAVAILABLE": "unavailable", "INVALID": "unavailable"}
    assert core_state("not_inuse") == "idle" and core_state("SOMETHING_NEW") == "idle"
