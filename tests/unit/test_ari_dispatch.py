"""Dispatch and waiters of AriClient, driven without a network via ``client.dispatch``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ari_app.ari import AriClient, AriOriginateFailed, Event, parse_event
from ari_app.ari import events as ev
from ari_app.settings import Settings

TS = "2026-11-23T06:33:30.348+0000"


def chan(cid: str) -> dict[str, Any]:
    return {
        "id": cid,
        "name": f"Local/{cid}",
        "state": "Up",
        "protocol_id": "",
        "caller": {"name": "", "number": ""},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "c", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
        "creationtime": TS,
        "language": "en",
    }


def event(type_name: str, cid: str = "ch-1", **extra: Any) -> Event:
    return parse_event(
        {"type": type_name, "application": "app", "timestamp": TS, "channel": chan(cid), **extra}
    )


@pytest.fixture
async def client() -> AriClient:
    c = AriClient("http://127.0.0.1:1", "u", "secret-pw", "app")
    yield c  # type: ignore[misc]
    await c.close()


async def test_waiter_resolves_when_event_arrives_before_await(client: AriClient) -> None:
    waiter = client.expect_stasis_start("ch-1", timeout=1)
    await client.dispatch(event("StasisStart", args=[]))  # before anyone awaits
    got = await waiter
    assert isinstance(got, ev.StasisStart) and got.channel.id == "ch-1"


async def test_waiter_matches_only_its_channel_and_type(client: AriClient) -> None:
    waiter = client.expect_event("StasisEnd", channel_id="ch-2", timeout=1)
    await client.dispatch(event("StasisEnd", "ch-1"))
    await client.dispatch(event("ChannelDestroyed", "ch-2", cause=16, cause_txt="Normal Clearing"))
    assert not waiter.done()
    await client.dispatch(event("StasisEnd", "ch-2"))
    assert (await waiter).type == "StasisEnd"


async def test_expect_event_by_bridge(client: AriClient) -> None:
    bridge = {
        "id": "br-1",
        "technology": "simple_bridge",
        "bridge_type": "mixing",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": "",
        "channels": ["ch-1"],
        "creationtime": TS,
    }
    waiter = client.expect_event(
        "ChannelEnteredBridge", channel_id="ch-1", bridge_id="br-1", timeout=1
    )
    await client.dispatch(event("ChannelEnteredBridge", "ch-1", bridge={**bridge, "id": "br-0"}))
    assert not waiter.done()
    await client.dispatch(event("ChannelEnteredBridge", "ch-1", bridge=bridge))
    assert waiter.done()


async def test_waiter_times_out_from_registration(client: AriClient) -> None:
    waiter = client.expect_event("StasisEnd", channel_id="nope", timeout=0.05)
    with pytest.raises(TimeoutError, match="StasisEnd"):
        await waiter
    assert not client._waiters  # removed on expiry


async def test_expired_unawaited_waiter_is_quietly_dropped(client: AriClient) -> None:
    waiter = client.expect_event("StasisEnd", timeout=0.01)
    await asyncio.wait({waiter.future})  # wait for expiry without awaiting the waiter
    assert not client._waiters


async def test_cancelled_waiter_is_removed(client: AriClient) -> None:
    waiter = client.expect(lambda e: True, timeout=5)
    waiter.cancel()
    assert not client._waiters
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_broken_predicate_fails_its_waiter_only(client: AriClient) -> None:
    bad = client.expect(lambda e: 1 / 0 == 0, timeout=1)
    good = client.expect(lambda e: e.type == "StasisEnd", timeout=1)
    await client.dispatch(event("StasisEnd"))
    with pytest.raises(ZeroDivisionError):
        await bad
    assert (await good).type == "StasisEnd"


async def test_waiters_run_before_handlers_and_handlers_in_order(client: AriClient) -> None:
    seen: list[str] = []
    waiter = client.expect(lambda e: True, timeout=1)

    def first(e: Event) -> None:
        seen.append(f"sync:{e.type}:waiter_done={waiter.done()}")

    async def second(e: Event) -> None:
        await asyncio.sleep(0)
        seen.append(f"async:{e.type}")

    client.on_event(first)
    client.on_event(second)
    await client.dispatch(event("StasisEnd"))
    assert seen == ["sync:StasisEnd:waiter_done=True", "async:StasisEnd"]


async def test_queue_dispatch_is_in_order_one_at_a_time(client: AriClient) -> None:
    """A slow async handler must not let the next event overtake it."""
    log: list[str] = []
    active = 0
    finished = asyncio.Event()

    async def slow(e: Event) -> None:
        nonlocal active
        active += 1
        assert active == 1
        cid = ev.channel_id_of(e)
        log.append(f"start {cid}")
        await asyncio.sleep(0.01)
        log.append(f"end {cid}")
        active -= 1
        if cid == "c3":
            finished.set()

    client.on_event(slow)
    await client.start()  # dispatcher runs; the stream just retries against a closed port
    for cid in ("c1", "c2", "c3"):
        client._enqueue(event("StasisEnd", cid))
    await asyncio.wait_for(finished.wait(), 2)
    assert log == ["start c1", "end c1", "start c2", "end c2", "start c3", "end c3"]


async def test_events_are_dispatched_inline_when_nothing_is_pending(client: AriClient) -> None:
    """The common case costs no task switch: a sync handler sees the event inside the sink."""
    seen: list[str] = []
    client.on_event(lambda e: seen.append(ev.channel_id_of(e) or ""))
    await client.start()
    client._enqueue(event("StasisEnd", "c1"))
    assert seen == ["c1"]


async def test_sync_handlers_wait_behind_an_awaited_one(client: AriClient) -> None:
    """Once one event's handler awaits, later events queue behind it, for every handler, and
    inline dispatch resumes when the backlog is empty."""
    log: list[str] = []
    release, c2_done = asyncio.Event(), asyncio.Event()

    async def slow_for_c1(e: Event) -> None:
        await release.wait()
        log.append(f"slow {ev.channel_id_of(e)}")

    def sync(e: Event) -> None:
        log.append(f"sync {ev.channel_id_of(e)}")
        if ev.channel_id_of(e) == "c2":
            c2_done.set()

    client.on_event(lambda e: slow_for_c1(e) if ev.channel_id_of(e) == "c1" else None)
    client.on_event(sync)
    await client.start()
    client._enqueue(event("StasisEnd", "c1"))
    client._enqueue(event("StasisEnd", "c2"))
    await asyncio.sleep(0)
    assert log == []  # c1 waits in its first handler; c2 may not overtake it in the second
    release.set()
    await asyncio.wait_for(c2_done.wait(), 2)
    assert log == ["slow c1", "sync c1", "sync c2"]
    client._enqueue(event("StasisEnd", "c3"))
    assert log[-1] == "sync c3"  # the backlog is empty: inline again


async def test_handler_exception_is_logged_and_dispatch_goes_on(
    client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def boom(e: Event) -> None:
        raise RuntimeError("handler bug")

    client.on_event(boom)
    client.on_event(lambda e: seen.append(e.type))
    with caplog.at_level(logging.ERROR, logger="ari_app.ari.client"):
        await client.dispatch(event("StasisEnd"))
        await client.dispatch(event("StasisStart", args=[]))
    assert seen == ["StasisEnd", "StasisStart"]
    assert "handler bug" in caplog.text


async def test_originate_and_wait_catches_event_arriving_before_post_returns(
    client: AriClient,
) -> None:
    sent: dict[str, Any] = {}

    async def fake_originate(**kwargs: Any) -> None:
        sent.update(kwargs)
        # Asterisk can push StasisStart before the POST's response is read.
        await client.dispatch(event("StasisStart", kwargs["channel_id"], args=["x"]))

    client.rest.channels.originate = fake_originate  # type: ignore[method-assign]
    got = await client.originate_and_wait(
        endpoint="Local/answer@sim-agent", app_args="x", wait_timeout=1
    )
    assert got.channel.id == sent["channel_id"] and sent["channel_id"].startswith("ch-")
    assert sent["app"] == "app"
    assert not client._waiters


async def test_originate_and_wait_reports_failed_dial(client: AriClient) -> None:
    async def fake_originate(**kwargs: Any) -> None:
        await client.dispatch(
            event("ChannelDestroyed", kwargs["channel_id"], cause=17, cause_txt="User busy")
        )

    client.rest.channels.originate = fake_originate  # type: ignore[method-assign]
    with pytest.raises(AriOriginateFailed) as info:
        await client.originate_and_wait(endpoint="Local/busy@sim-agent", channel_id="leg-1")
    assert info.value.cause == 17 and info.value.channel_id == "leg-1"


async def test_originate_and_wait_drops_waiter_when_post_fails(client: AriClient) -> None:
    async def fake_originate(**kwargs: Any) -> None:
        raise RuntimeError("post failed")

    client.rest.channels.originate = fake_originate  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await client.originate_and_wait(endpoint="Local/x@y")
    assert not client._waiters


def test_new_id_is_unique_and_prefixed() -> None:
    ids = {AriClient.new_id("br") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("br-") for i in ids)


async def test_from_settings_and_repr_hide_password() -> None:
    s = Settings(
        ari_url="http://127.0.0.1:38088",
        ari_user="bob",
        ari_password="pw-XYZ-123",
        app_name="myapp",
    )
    c = AriClient.from_settings(s)
    try:
        assert c.app == "myapp" and c.rest.user == "bob"
        assert c.stream.url == "ws://127.0.0.1:38088/ari/events?app=myapp&subscribeAll=false"
        assert "pw-XYZ-123" not in repr(c) + repr(c.rest) + repr(c.stream)
    finally:
        await c.close()
