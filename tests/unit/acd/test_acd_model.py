"""Config records: validation names the field; dict round-trips for TOML/JSON/HTTP."""

from __future__ import annotations

import json

import pytest

from ari_app.acd.core import AgentConfig, ConfigError, QueueConfig, QueueItem


def test_queue_from_dict_round_trip_with_coercions() -> None:
    cfg = QueueConfig.from_dict(
        {
            "name": "sales",
            "strategy": "round-robin",
            "join_empty": "paused, unavailable",
            "leave_empty": ["loggedout"],
            "skill_escalation": [[30, 2], {"after": 60, "min_level": 0}],
            "max_wait": 120,
            "max_wait_destination": "context:overflow,s,1",
        }
    )
    assert cfg.join_empty == frozenset({"paused", "unavailable"})
    assert cfg.skill_escalation == ((30, 2), (60, 0))
    again = QueueConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "q", "strategy": "fastest"}, "strategy"),
        ({"name": "q", "max_len": -1}, "max_len"),
        ({"name": "q", "max_wait": 0}, "max_wait"),
        ({"name": "q", "ring_timeout": "15"}, "ring_timeout"),
        ({"name": "q", "join_empty": ["paused", "asleep"]}, "join_empty"),
        ({"name": "q", "exit_key": "12"}, "exit_key"),
        ({"name": "q", "exit_key": "1", "callback_key": "1"}, "callback_key"),
        ({"name": "q", "max_wait_destination": "elsewhere"}, "max_wait_destination"),
        ({"name": "q", "skill_escalation": [[30, 11]]}, "skill_escalation[0].min_level"),
        ({"name": "q", "skill_escalation": 5}, "skill_escalation"),
        ({"name": "q", "ring_in_use": "yes"}, "ring_in_use"),
        ({"name": "q", "colour": "blue"}, "colour"),
        ({}, "name"),
    ],
)
def test_queue_validation_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        QueueConfig.from_dict(data)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"id": "a1"}, "endpoint"),
        ({"id": "a1", "endpoint": "PJSIP/a1", "skills": {"fr": 11}}, "skills.fr"),
        ({"id": "a1", "endpoint": "PJSIP/a1", "skills": {"fr": 0}}, "skills.fr"),
        ({"id": "a1", "endpoint": "PJSIP/a1", "memberships": {"q": -1}}, "memberships.q"),
        ({"id": "a1", "endpoint": "PJSIP/a1", "memberships": ["q"]}, "memberships"),
        ({"id": "a1", "endpoint": "PJSIP/a1", "wrapup_time": -5}, "wrapup_time"),
        ({"id": "a1", "endpoint": "Local/a1@agents", "device": "agent 7"}, "device"),
        ({"id": "a1", "endpoint": "Local/a1@agents", "device": "agent7"}, "device"),
        ({"id": "a1", "endpoint": "Local/a1@agents", "device": 7}, "device"),
    ],
)
def test_agent_validation_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        AgentConfig.from_dict(data)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("endpoint", "device", "followed"),
    [
        ("PJSIP/1001", None, "PJSIP/1001"),
        ("SIP/1001", None, "SIP/1001"),
        ("IAX2/desk7", None, "IAX2/desk7"),
        ("PJSIP/0612345678@trunk", None, None),  # a number through a trunk: no phone of theirs
        ("Local/a1@agents", None, None),
        ("Local/a1@agents", "Custom:agent7", "Custom:agent7"),
        ("PJSIP/1001", "Stasis:desk-7", "Stasis:desk-7"),
    ],
)
def test_agent_device_defaults_to_a_phone_endpoint(
    endpoint: str, device: str | None, followed: str | None
) -> None:
    assert AgentConfig("a1", endpoint, device=device).device_name == followed


def test_agent_and_item_round_trip() -> None:
    agent = AgentConfig("a1", "PJSIP/a1", skills={"fr": 5}, memberships={"q": 1}, wrapup_time=10)
    assert AgentConfig.from_dict(json.loads(json.dumps(agent.to_dict()))) == agent
    local = AgentConfig("a2", "Local/a2@agents", device="Custom:a2")
    assert AgentConfig.from_dict(json.loads(json.dumps(local.to_dict()))) == local
    item = QueueItem(
        "c1",
        "q",
        kind="callback",
        priority=2,
        entered_at=12.5,
        required_skills={"fr": 3},
        preferred_agent="a1",
        preferred_fallback_after=60,
        data={"number": "+33"},
    )
    assert QueueItem.from_dict(json.loads(json.dumps(item.to_dict()))) == item


def test_item_validation() -> None:
    with pytest.raises(ConfigError) as err:
        QueueItem.from_dict({"id": "c1", "queue": "q", "kind": "fax"})
    assert err.value.field == "kind"
    with pytest.raises(ConfigError) as err:
        QueueItem("c1", "q", required_skills={"fr": 0})
    assert err.value.field == "required_skills.fr"


def test_relaxed_requirements() -> None:
    cfg = QueueConfig("q", skill_escalation=((30, 2), (60, 0)))
    assert cfg.relaxed({"fr": 5, "de": 1}, 0) == (("de", 1), ("fr", 5))
    assert cfg.relaxed({"fr": 5, "de": 1}, 30) == (("de", 1), ("fr", 2))
    assert cfg.relaxed({"fr": 5, "de": 1}, 61) == ()
    assert (
        cfg.next_escalation(0) == 30
        and cfg.next_escalation(30) == 60
        and cfg.next_escalation(60) is None
    )

