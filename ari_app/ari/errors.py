"""Typed ARI errors.

Why typed: callers branch on *what* went wrong (a channel that just hung up is a normal outcome,
bad credentials are fatal, a transport blip is retried) without parsing strings. Why careful text:
exception messages end up in logs, so they are built only from method, path, status and Asterisk's
own ``message`` -- never from URLs with credentials, headers or the password.
"""

from __future__ import annotations


class AriError(Exception):
    """Base of every error raised by ``ari_app.ari``."""


class AriConnectionError(AriError):
    """Transport failure: refused, reset, timed out, websocket not (yet) connected."""


class AriHttpError(AriError):
    """ARI answered with an HTTP error status."""

    def __init__(self, status: int, method: str, path: str, detail: str = "") -> None:
        self.status = status
        self.method = method
        self.path = path.split("?", 1)[0]  # never keep a query string: it is not ours to log
        self.detail = detail
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"ARI {self.method} {self.path} -> HTTP {self.status}"
        return f"{text}: {self.detail}" if self.detail else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, method={self.method!r}, "
            f"path={self.path!r}, detail={self.detail!r})"
        )


class AriBadRequest(AriHttpError):
    """400: a parameter was missing or wrong (a bug on our side)."""


class AriAuthError(AriHttpError):
    """401/403: the ARI user or password is wrong, or the user is read-only."""

    def __init__(
        self, status: int, method: str, path: str, detail: str = "", *, user: str = ""
    ) -> None:
        self.user = user
        super().__init__(status, method, path, detail)

    def _text(self) -> str:
        return (
            f"ARI rejected the credentials for user {self.user!r} "
            f"({self.method} {self.path} -> HTTP {self.status}"
            + (f": {self.detail})" if self.detail else ")")
            + "; check ari_user / ari_password and Asterisk's ari.conf"
        )


class AriNotFound(AriHttpError):
    """404: the channel/bridge/playback does not exist (any more)."""


class AriConflict(AriHttpError):
    """409: the object is in the wrong state for this operation (e.g. channel not in Stasis)."""


class AriUnprocessable(AriHttpError):
    """422: a referenced object is missing (e.g. bridge add of a channel that just went away)."""


class AriOriginateFailed(AriError):
    """An originated channel was destroyed before it entered our Stasis app (busy, no answer...)."""

    def __init__(self, channel_id: str, cause: int | None, cause_txt: str) -> None:
        self.channel_id = channel_id
        self.cause = cause
        self.cause_txt = cause_txt
        super().__init__(f"originate of channel {channel_id} failed: cause {cause} ({cause_txt})")


_BY_STATUS: dict[int, type[AriHttpError]] = {
    400: AriBadRequest,
    401: AriAuthError,
    403: AriAuthError,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def http_error(status: int, method: str, path: str, detail: str, *, user: str) -> AriHttpError:
    """Build the typed exception for an HTTP error status."""
    cls = _BY_STATUS.get(status, AriHttpError)
    if cls is AriAuthError:
        return AriAuthError(status, method, path, detail, user=user)
    return cls(status, method, path, detail)


def is_gone(exc: BaseException) -> bool:
    """True when the error means "the object went away under us".

    That is 404/409/422, plus the 400 "Channel not found" that bridges addChannel/removeChannel
    answer (documented so in bridges.json). A channel can hang up between the event we acted on
    and our REST call; that is a normal outcome for callers, not a failure to log loudly.
    """
    if isinstance(exc, AriBadRequest):
        return "not found" in exc.detail.lower()
    return isinstance(exc, AriNotFound | AriConflict | AriUnprocessable)
