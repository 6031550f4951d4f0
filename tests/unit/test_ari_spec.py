"""Our models and REST calls vs the ARI spec shipped with Asterisk (rest-api/*.json).

A rename in Asterisk must fail here, loudly. The spec comes from ``$ARI_APP_SPEC_DIR``, else the
sandbox root, else the manually built root; if none exists this FAILS (no skip): the sandbox
build is part of the project's setup.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ari_app.ari import spec as ari_spec
from ari_app.ari.events import ARI_EVENT_TYPES
from ari_app.ari.models import SPEC_MODELS


@pytest.fixture(scope="module")
def spec() -> ari_spec.Spec:
    try:
        path = ari_spec.find_spec_dir()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    return ari_spec.load_spec_dir(path)


def test_spec_dir_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_APP_SPEC_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="ARI spec not found.*nowhere.*ARI_APP_SPEC_DIR"):
        ari_spec.find_spec_dir()


def test_spec_has_what_we_check(spec: ari_spec.Spec) -> None:
    for doc in (
        "channels",
        "bridges",
        "playbacks",
        "recordings",
        "applications",
        "asterisk",
        "endpoints",
        "deviceStates",
        "events",
    ):
        assert doc in spec, f"{doc}.json missing from the spec"


def test_models_match_spec(spec: ari_spec.Spec) -> None:
    assert ari_spec.check_models(spec) == []


async def test_rest_calls_match_spec(spec: ari_spec.Spec) -> None:
    assert await ari_spec.check_rest(spec) == []


def test_all_event_models_are_checked() -> None:
    assert {"StasisStart", "ChannelDestroyed", "Dial", "ChannelEnteredBridge"} <= set(
        ARI_EVENT_TYPES
    )
    assert {"Channel", "Bridge", "Playback", "LiveRecording"} <= set(SPEC_MODELS)


# --- the check itself must catch renames (mutate a copy of the real spec) ---------------------


def _op(spec: ari_spec.Spec, doc: str, path: str, method: str) -> dict:  # type: ignore[type-arg]
    for api in spec[doc]["apis"]:
        if api["path"] == path:
            for op in api["operations"]:
                if op["httpMethod"] == method:
                    return op  # type: ignore[no-any-return]
    raise AssertionError(f"{method} {path} not in {doc}")


async def test_renamed_query_param_is_caught(spec: ari_spec.Spec) -> None:
    mutated = copy.deepcopy(spec)
    for p in _op(mutated, "channels", "/channels", "POST")["parameters"]:
        if p["name"] == "appArgs":
            p["name"] = "app_args"
    problems = await ari_spec.check_rest(mutated)
    assert any("rest.channels.originate" in p and "'appArgs'" in p for p in problems), problems


async def test_new_required_param_is_caught(spec: ari_spec.Spec) -> None:
    mutated = copy.deepcopy(spec)
    _op(mutated, "bridges", "/bridges/{bridgeId}/addChannel", "POST")["parameters"].append(
        {"name": "newThing", "paramType": "query", "required": True, "dataType": "string"}
    )
    problems = await ari_spec.check_rest(mutated)
    assert any("add_channel" in p and "newThing" in p for p in problems), problems


async def test_removed_operation_and_changed_response_are_caught(spec: ari_spec.Spec) -> None:
    mutated = copy.deepcopy(spec)
    mutated["channels"]["apis"] = [
        a for a in mutated["channels"]["apis"] if a["path"] != "/channels/{channelId}/ring"
    ]
    _op(mutated, "channels", "/channels/{channelId}/play", "POST")["responseClass"] = "Channel"
    problems = await ari_spec.check_rest(mutated)
    assert any("rest.channels.ring:" in p and "not an operation" in p for p in problems), problems
    assert any("rest.channels.play:" in p and "returns Playback" in p for p in problems), problems


def test_renamed_model_field_is_caught(spec: ari_spec.Spec) -> None:
    mutated = copy.deepcopy(spec)
    props = mutated["channels"]["models"]["Channel"]["properties"]
    props["created"] = props.pop("creationtime")
    ev_props = mutated["events"]["models"]["ChannelDestroyed"]["properties"]
    ev_props["cause_text"] = ev_props.pop("cause_txt")
    problems = ari_spec.check_models(mutated)
    assert any("model Channel" in p and "'creationtime'" in p for p in problems), problems
    assert any("event ChannelDestroyed" in p and "'cause_txt'" in p for p in problems), problems


def test_field_made_optional_and_removed_event_are_caught(spec: ari_spec.Spec) -> None:
    mutated = copy.deepcopy(spec)
    mutated["bridges"]["models"]["Bridge"]["properties"]["technology"]["required"] = False
    del mutated["events"]["models"]["Dial"]
    problems = ari_spec.check_models(mutated)
    assert any("model Bridge" in p and "'technology'" in p and "optional" in p for p in problems)
    assert any("event Dial" in p for p in problems), problems
