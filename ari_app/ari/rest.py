"""Typed ARI REST calls over one pooled aiohttp session.

Why one session: ARI calls are many and small (several per call leg); a pooled keep-alive session
avoids a TCP handshake per request. Why typed namespaces: parameter names are checked against
the shipped spec (tests/unit/test_ari_spec.py), so an Asterisk rename fails a test, not a call.
Python names are snake_case; the spec's names (mostly camelCase) appear only in this file.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import json as jsonlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp

from .errors import AriConnectionError, http_error
from .models import (
    Application,
    AriModel,
    AsteriskInfo,
    AsteriskPing,
    Bridge,
    Channel,
    DeviceState,
    Endpoint,
    LiveRecording,
    Module,
    Playback,
    StoredRecording,
    Variable,
)

M = TypeVar("M", bound=AriModel)

HangupReason = Literal[
    "normal",
    "busy",
    "congestion",
    "no_answer",
    "timeout",
    "rejected",
    "unallocated",
    "normal_unspecified",
    "number_incomplete",
    "codec_mismatch",
    "interworking",
    "failure",
    "answered_elsewhere",
]
Direction = Literal["both", "in", "out"]
SnoopDirection = Literal["none", "both", "out", "in"]
IfExists = Literal["fail", "overwrite", "append"]
TerminateOn = Literal["none", "any", "*", "#"]
PlaybackOperation = Literal["restart", "pause", "unpause", "reverse", "forward"]
DeviceStateValue = Literal[
    "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE", "ONHOLD"
]
InfoSection = Literal["build", "system", "config", "status"]
StrOrList = str | Sequence[str]


def _q(segment: str) -> str:
    """Quote one path segment (ids are ours, but a '/' or '?' must never change the route)."""
    return quote(segment, safe="")


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ",".join(str(v) for v in value)
    return str(value)


def _one(cls: type[M], data: Any) -> M:
    return cls.model_validate(data)


def _many(cls: type[M], data: Any) -> builtins.list[M]:
    return [cls.model_validate(item) for item in data or []]


def _vars_body(variables: Mapping[str, str] | None) -> dict[str, Any] | None:
    return {"variables": dict(variables)} if variables else None


class _GentleConnector(aiohttp.TCPConnector):
    """A connector that opens at most ``connect_concurrency`` connections at a time.

    Why: Asterisk's HTTP server listens with a backlog of 10 and accepts from one thread. When
    the pool grows in a burst (a load peak, a restart with calls waiting), connection attempts
    beyond the backlog are dropped and the kernel retries them after a full second: the call
    whose request it was waits a second. Opening a few at a time avoids the overflow; requests
    meanwhile wait for the first free connection, usually a few milliseconds.
    (``_create_connection`` has kept this signature across aiohttp 3.x.)
    """

    def __init__(self, *, connect_concurrency: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._connecting = asyncio.Semaphore(connect_concurrency)

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        async with self._connecting:
            return await super()._create_connection(req, traces, timeout)


class AriRest:
    """ARI REST over one aiohttp session. ``base_url`` is Asterisk's HTTP root (``/ari`` optional).

    At most ``max_connections`` connections (Asterisk serves 100 HTTP sessions for all its clients
    together, http.conf ``sessionlimit``), opened ``connect_concurrency`` at a time."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10,
        max_connections: int = 32,
        connect_concurrency: int = 4,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base[: -len("/ari")] if base.endswith("/ari") else base
        self.user = user
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.__auth_header = f"Basic {token}"
        self.__secrets = tuple(x for x in (token, password) if x)
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._connect_concurrency = connect_concurrency
        self.channels = Channels(self)
        self.bridges = Bridges(self)
        self.playbacks = Playbacks(self)
        self.recordings = Recordings(self)
        self.applications = Applications(self)
        self.asterisk = Asterisk(self)
        self.endpoints = Endpoints(self)
        self.device_states = DeviceStates(self)

    def __repr__(self) -> str:
        return f"AriRest(base_url={self.base_url!r}, user={self.user!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._own_session:
                raise AriConnectionError("the aiohttp session given to AriRest is closed")
            self._session = aiohttp.ClientSession(
                connector=_GentleConnector(limit=self._max_connections, keepalive_timeout=30,
                                           connect_concurrency=self._connect_concurrency)
            )
        return self._session

    async def close(self) -> None:
        """Close the session if we created it (a session passed in belongs to the caller)."""
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None if self._own_session else self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = None,
        json: Any = None,
    ) -> Any:
        """Call ``/ari{path}``; returns decoded JSON, or None for an empty (204) answer.

        ``params`` with value None are dropped; booleans become "true"/"false", sequences are
        comma-joined (ARI's ``allowMultiple``). Raises the typed errors from ``errors.py``.
        """
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/ari{path}"
        try:
            async with self._get_session().request(
                method,
                url,
                params=query,
                json=json,
                headers={"Authorization": self.__auth_header},
                timeout=self._timeout,
            ) as resp:
                body = await resp.read()
                status = resp.status
                content_type = resp.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Built from our own safe parts only; the aiohttp exception (which may carry the
            # request's headers) is deliberately not chained.
            raise AriConnectionError(
                f"ARI {method} {path} failed: {type(exc).__name__}: {self._scrub(str(exc))}"
            ) from None
        data = self._decode(body, content_type)
        if status >= 400:
            detail = data.get("message", "") if isinstance(data, dict) else ""
            if not detail and isinstance(data, str):
                detail = data[:200]
            raise http_error(status, method, path, self._scrub(str(detail)), user=self.user)
        return data

    @staticmethod
    def _decode(body: bytes, content_type: str) -> Any:
        if not body:
            return None
        text = body.decode("utf-8", errors="replace")
        if content_type == "application/json" or text[:1] in "{[":
            try:
                return jsonlib.loads(text)
            except ValueError:
                return text
        return text

    def _scrub(self, text: str) -> str:
        for secret in self.__secrets:
            text = text.replace(secret, "***")
        return text


class _Ns:
    def __init__(self, rest: AriRest) -> None:
        self._r = rest

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._r!r}>"


class Channels(_Ns):
    """``/channels``: the call legs."""

    async def list(self) -> builtins.list[Channel]:
        return _many(Channel, await self._r.request("GET", "/channels"))

    async def get(self, *, channel_id: str) -> Channel:
        return _one(Channel, await self._r.request("GET", f"/channels/{_q(channel_id)}"))

    async def originate(
        self,
        *,
        endpoint: str,
        extension: str | None = None,
        context: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        app: str | None = None,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: StrOrList | None = None,
    ) -> Channel:
        """Dial ``endpoint``; into the dialplan (extension/context/priority|label) or into ``app``."""
        params = {
            "endpoint": endpoint,
            "extension": extension,
            "context": context,
            "priority": priority,
            "label": label,
            "app": app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": formats,
        }
        data = await self._r.request("POST", "/channels", params=params, json=_vars_body(variables))
        return _one(Channel, data)

    async def create(
        self,
        *,
        endpoint: str,
        app: str,
        app_args: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: StrOrList | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Create a channel without dialing it (``dial`` later), already in ``app``."""
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": formats,
        }
        data = await self._r.request(
            "POST", "/channels/create", params=params, json=_vars_body(variables)
        )
        return _one(Channel, data)

    async def dial(
        self, *, channel_id: str, caller: str | None = None, timeout: int | None = None
    ) -> None:
        await self._r.request(
            "POST",
            f"/channels/{_q(channel_id)}/dial",
            params={"caller": caller, "timeout": timeout},
        )

    async def answer(self, *, channel_id: str) -> None:
        await self._r.request("POST", f"/channels/{_q(channel_id)}/answer")

    async def hangup(
        self,
        *,
        channel_id: str,
        reason: HangupReason | None = None,
        reason_code: str | None = None,
    ) -> None:
        await self._r.request(
            "DELETE",
            f"/channels/{_q(channel_id)}",
            params={"reason": reason, "reason_code": reason_code},
        )

    async def ring(self, *, channel_id: str) -> None:
        await self._r.request("POST", f"/channels/{_q(channel_id)}/ring")

    async def ring_stop(self, *, channel_id: str) -> None:
        await self._r.request("DELETE", f"/channels/{_q(channel_id)}/ring")

    async def progress(self, *, channel_id: str) -> None:
        await self._r.request("POST", f"/channels/{_q(channel_id)}/progress")

    async def start_moh(self, *, channel_id: str, moh_class: str | None = None) -> None:
        await self._r.request(
            "POST", f"/channels/{_q(channel_id)}/moh", params={"mohClass": moh_class}
        )

    async def stop_moh(self, *, channel_id: str) -> None:
        await self._r.request("DELETE", f"/channels/{_q(channel_id)}/moh")

    async def start_silence(self, *, channel_id: str) -> None:
        await self._r.request("POST", f"/channels/{_q(channel_id)}/silence")

    async def stop_silence(self, *, channel_id: str) -> None:
        await self._r.request("DELETE", f"/channels/{_q(channel_id)}/silence")

    async def play(
        self,
        *,
        channel_id: str,
        media: StrOrList,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback:
        """Play ``media`` (URI or list of URIs, e.g. ``sound:hello-world``)."""
        params = {
            "media": media,
            "playbackId": playback_id,
            "lang": lang,
            "offsetms": offsetms,
            "skipms": skipms,
        }
        data = await self._r.request("POST", f"/channels/{_q(channel_id)}/play", params=params)
        return _one(Playback, data)

    async def record(
        self,
        *,
        channel_id: str,
        name: str,
        format: str,
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: IfExists | None = None,
        beep: bool | None = None,
        terminate_on: TerminateOn | None = None,
    ) -> LiveRecording:
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        data = await self._r.request("POST", f"/channels/{_q(channel_id)}/record", params=params)
        return _one(LiveRecording, data)

    async def snoop(
        self,
        *,
        channel_id: str,
        app: str,
        spy: SnoopDirection | None = None,
        whisper: SnoopDirection | None = None,
        app_args: str | None = None,
        snoop_id: str | None = None,
    ) -> Channel:
        """Create a snoop channel (supervisor listen/whisper) that enters ``app``."""
        params = {
            "app": app,
            "spy": spy,
            "whisper": whisper,
            "appArgs": app_args,
            "snoopId": snoop_id,
        }
        data = await self._r.request("POST", f"/channels/{_q(channel_id)}/snoop", params=params)
        return _one(Channel, data)

    async def get_variable(self, *, channel_id: str, variable: str) -> Variable:
        data = await self._r.request(
            "GET", f"/channels/{_q(channel_id)}/variable", params={"variable": variable}
        )
        return _one(Variable, data)

    async def set_variable(
        self,
        *,
        channel_id: str,
        variable: str,
        value: str | None = None,
        report_events: bool | None = None,
    ) -> None:
        await self._r.request(
            "POST",
            f"/channels/{_q(channel_id)}/variable",
            params={"variable": variable, "value": value, "report_events": report_events},
        )

    async def send_dtmf(
        self,
        *,
        channel_id: str,
        dtmf: str,
        before: int | None = None,
        between: int | None = None,
        duration: int | None = None,
        after: int | None = None,
    ) -> None:
        params = {
            "dtmf": dtmf,
            "before": before,
            "between": between,
            "duration": duration,
            "after": after,
        }
        await self._r.request("POST", f"/channels/{_q(channel_id)}/dtmf", params=params)

    async def mute(self, *, channel_id: str, direction: Direction | None = None) -> None:
        await self._r.request(
            "POST", f"/channels/{_q(channel_id)}/mute", params={"direction": direction}
        )

    async def unmute(self, *, channel_id: str, direction: Direction | None = None) -> None:
        await self._r.request(
            "DELETE", f"/channels/{_q(channel_id)}/mute", params={"direction": direction}
        )

    async def hold(self, *, channel_id: str) -> None:
        await self._r.request("POST", f"/channels/{_q(channel_id)}/hold")

    async def unhold(self, *, channel_id: str) -> None:
        await self._r.request("DELETE", f"/channels/{_q(channel_id)}/hold")

    async def continue_in_dialplan(
        self,
        *,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self._r.request("POST", f"/channels/{_q(channel_id)}/continue", params=params)

    async def move(self, *, channel_id: str, app: str, app_args: str | None = None) -> None:
        await self._r.request(
            "POST", f"/channels/{_q(channel_id)}/move", params={"app": app, "appArgs": app_args}
        )

    async def redirect(self, *, channel_id: str, endpoint: str) -> None:
        await self._r.request(
            "POST", f"/channels/{_q(channel_id)}/redirect", params={"endpoint": endpoint}
        )

    async def external_media(
        self,
        *,
        app: str,
        external_host: str,
        format: str,
        channel_id: str | None = None,
        encapsulation: Literal["rtp", "audiosocket", "none"] | None = None,
        transport: Literal["udp", "tcp", "websocket"] | None = None,
        connection_type: Literal["client", "server"] | None = None,
        direction: Literal["both"] | None = None,
        data: str | None = None,
        transport_data: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Stream a channel's media to/from ``external_host`` (e.g. a speech engine)."""
        params = {
            "channelId": channel_id,
            "app": app,
            "external_host": external_host,
            "encapsulation": encapsulation,
            "transport": transport,
            "connection_type": connection_type,
            "format": format,
            "direction": direction,
            "data": data,
            "transport_data": transport_data,
        }
        body = await self._r.request(
            "POST", "/channels/externalMedia", params=params, json=_vars_body(variables)
        )
        return _one(Channel, body)


class Bridges(_Ns):
    """``/bridges``: where two or more legs are connected."""

    async def list(self) -> builtins.list[Bridge]:
        return _many(Bridge, await self._r.request("GET", "/bridges"))

    async def get(self, *, bridge_id: str) -> Bridge:
        return _one(Bridge, await self._r.request("GET", f"/bridges/{_q(bridge_id)}"))

    async def create(
        self, *, bridge_id: str | None = None, type: str = "mixing", name: str | None = None
    ) -> Bridge:
        """``type`` is a comma list of mixing, holding, dtmf_events, proxy_media, video_sfu..."""
        data = await self._r.request(
            "POST", "/bridges", params={"type": type, "bridgeId": bridge_id, "name": name}
        )
        return _one(Bridge, data)

    async def destroy(self, *, bridge_id: str) -> None:
        await self._r.request("DELETE", f"/bridges/{_q(bridge_id)}")

    async def add_channel(
        self,
        *,
        bridge_id: str,
        channel: StrOrList,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
        inhibit_connected_line_updates: bool | None = None,
    ) -> None:
        params = {
            "channel": channel,
            "role": role,
            "absorbDTMF": absorb_dtmf,
            "mute": mute,
            "inhibitConnectedLineUpdates": inhibit_connected_line_updates,
        }
        await self._r.request("POST", f"/bridges/{_q(bridge_id)}/addChannel", params=params)

    async def remove_channel(self, *, bridge_id: str, channel: StrOrList) -> None:
        await self._r.request(
            "POST", f"/bridges/{_q(bridge_id)}/removeChannel", params={"channel": channel}
        )

    async def start_moh(self, *, bridge_id: str, moh_class: str | None = None) -> None:
        await self._r.request(
            "POST", f"/bridges/{_q(bridge_id)}/moh", params={"mohClass": moh_class}
        )

    async def stop_moh(self, *, bridge_id: str) -> None:
        await self._r.request("DELETE", f"/bridges/{_q(bridge_id)}/moh")

    async def play(
        self,
        *,
        bridge_id: str,
        media: StrOrList,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
        announcer_format: str | None = None,
    ) -> Playback:
        params = {
            "media": media,
            "playbackId": playback_id,
            "lang": lang,
            "offsetms": offsetms,
            "skipms": skipms,
            "announcer_format": announcer_format,
        }
        data = await self._r.request("POST", f"/bridges/{_q(bridge_id)}/play", params=params)
        return _one(Playback, data)

    async def record(
        self,
        *,
        bridge_id: str,
        name: str,
        format: str,
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: IfExists | None = None,
        beep: bool | None = None,
        terminate_on: TerminateOn | None = None,
        recorder_format: str | None = None,
    ) -> LiveRecording:
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
            "recorder_format": recorder_format,
        }
        data = await self._r.request("POST", f"/bridges/{_q(bridge_id)}/record", params=params)
        return _one(LiveRecording, data)


class Playbacks(_Ns):
    async def get(self, *, playback_id: str) -> Playback:
        return _one(Playback, await self._r.request("GET", f"/playbacks/{_q(playback_id)}"))

    async def stop(self, *, playback_id: str) -> None:
        await self._r.request("DELETE", f"/playbacks/{_q(playback_id)}")

    async def control(self, *, playback_id: str, operation: PlaybackOperation) -> None:
        await self._r.request(
            "POST", f"/playbacks/{_q(playback_id)}/control", params={"operation": operation}
        )


class Recordings(_Ns):
    async def get_live(self, *, recording_name: str) -> LiveRecording:
        data = await self._r.request("GET", f"/recordings/live/{_q(recording_name)}")
        return _one(LiveRecording, data)

    async def stop_live(self, *, recording_name: str) -> None:
        """Stop and keep the file."""
        await self._r.request("POST", f"/recordings/live/{_q(recording_name)}/stop")

    async def cancel_live(self, *, recording_name: str) -> None:
        """Stop and discard the file."""
        await self._r.request("DELETE", f"/recordings/live/{_q(recording_name)}")

    async def list_stored(self) -> builtins.list[StoredRecording]:
        return _many(StoredRecording, await self._r.request("GET", "/recordings/stored"))

    async def get_stored(self, *, recording_name: str) -> StoredRecording:
        data = await self._r.request("GET", f"/recordings/stored/{_q(recording_name)}")
        return _one(StoredRecording, data)

    async def delete_stored(self, *, recording_name: str) -> None:
        await self._r.request("DELETE", f"/recordings/stored/{_q(recording_name)}")


class Applications(_Ns):
    async def list(self) -> builtins.list[Application]:
        return _many(Application, await self._r.request("GET", "/applications"))

    async def get(self, *, application_name: str) -> Application:
        data = await self._r.request("GET", f"/applications/{_q(application_name)}")
        return _one(Application, data)

    async def subscribe(self, *, application_name: str, event_source: StrOrList) -> Application:
        """``event_source``: ``channel:<id>``, ``bridge:<id>``, ``endpoint:<tech>/<res>``, ``deviceState:<name>``."""
        data = await self._r.request(
            "POST",
            f"/applications/{_q(application_name)}/subscription",
            params={"eventSource": event_source},
        )
        return _one(Application, data)

    async def unsubscribe(self, *, application_name: str, event_source: StrOrList) -> Application:
        data = await self._r.request(
            "DELETE",
            f"/applications/{_q(application_name)}/subscription",
            params={"eventSource": event_source},
        )
        return _one(Application, data)

    async def set_event_filter(
        self,
        *,
        application_name: str,
        allowed: Sequence[str] | None = None,
        disallowed: Sequence[str] | None = None,
    ) -> Application:
        """Allow/disallow event types; None leaves that list as it is, [] empties it."""
        body: dict[str, Any] = {}
        if allowed is not None:
            body["allowed"] = [{"type": t} for t in allowed]
        if disallowed is not None:
            body["disallowed"] = [{"type": t} for t in disallowed]
        data = await self._r.request(
            "PUT", f"/applications/{_q(application_name)}/eventFilter", json=body
        )
        return _one(Application, data)


class Asterisk(_Ns):
    async def info(self, *, only: Sequence[InfoSection] | None = None) -> AsteriskInfo:
        return _one(
            AsteriskInfo, await self._r.request("GET", "/asterisk/info", params={"only": only})
        )

    async def ping(self) -> AsteriskPing:
        return _one(AsteriskPing, await self._r.request("GET", "/asterisk/ping"))

    async def get_global_var(self, *, variable: str) -> Variable:
        data = await self._r.request("GET", "/asterisk/variable", params={"variable": variable})
        return _one(Variable, data)

    async def set_global_var(self, *, variable: str, value: str | None = None) -> None:
        await self._r.request(
            "POST", "/asterisk/variable", params={"variable": variable, "value": value}
        )

    async def list_modules(self) -> builtins.list[Module]:
        return _many(Module, await self._r.request("GET", "/asterisk/modules"))


class Endpoints(_Ns):
    async def list(self, *, tech: str | None = None) -> builtins.list[Endpoint]:
        path = f"/endpoints/{_q(tech)}" if tech else "/endpoints"
        return _many(Endpoint, await self._r.request("GET", path))

    async def get(self, *, tech: str, resource: str) -> Endpoint:
        return _one(Endpoint, await self._r.request("GET", f"/endpoints/{_q(tech)}/{_q(resource)}"))


class DeviceStates(_Ns):
    """Device states owned by ARI (names ``Stasis:<name>``), e.g. for agent presence lamps."""

    async def list(self) -> builtins.list[DeviceState]:
        return _many(DeviceState, await self._r.request("GET", "/deviceStates"))

    async def get(self, *, device_name: str) -> DeviceState:
        return _one(DeviceState, await self._r.request("GET", f"/deviceStates/{_q(device_name)}"))

    async def update(self, *, device_name: str, device_state: DeviceStateValue) -> None:
        await self._r.request(
            "PUT", f"/deviceStates/{_q(device_name)}", params={"deviceState": device_state}
        )

    async def delete(self, *, device_name: str) -> None:
        await self._r.request("DELETE", f"/deviceStates/{_q(device_name)}")


#: Namespace attribute name on ``AriRest`` -> class; used by the spec conformance check.
NAMESPACES: dict[str, type[_Ns]] = {
    "channels": Channels,
    "bridges": Bridges,
    "playbacks": Playbacks,
    "recordings": Recordings,
    "applications": Applications,
    "asterisk": Asterisk,
    "endpoints": Endpoints,
    "device_states": DeviceStates,
}
