"""Short-lived signed tokens: the site's backend vouches for one click, no API token in a browser.

Format: ``c2c1.<payload>.<mac>``, base64url without padding; payload is compact JSON
``{"site", "exp", "nonce", "target"?, "number"?}``; mac is HMAC-SHA256 over ``c2c1.<payload>``
with the site's `token_secret`. A site's backend can mint them itself (a few lines in any
language) or ask the authenticated API. `target` and `number`, when present, bind the token to
that target and that (E.164) number. Each nonce is accepted once (`NonceLedger`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "c2c1"
MAX_LENGTH = 2048


class TokenError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    site: str
    expires: int
    nonce: str
    target: str | None = None
    number: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def sign(secret: bytes, claims: TokenClaims) -> str:
    body: dict[str, object] = {"site": claims.site, "exp": claims.expires, "nonce": claims.nonce}
    if claims.target is not None:
        body["target"] = claims.target
    if claims.number is not None:
        body["number"] = claims.number
    signed = f"{PREFIX}.{_b64(json.dumps(body, separators=(',', ':')).encode())}"
    return f"{signed}.{_mac(secret, signed)}"


def verify(token: str, secret_for: Callable[[str], bytes | None], now: float) -> TokenClaims:
    """The claims of a well-signed, unexpired token; TokenError (with a reason) otherwise."""
    if not isinstance(token, str) or len(token) > MAX_LENGTH or token.count(".") != 2:
        raise TokenError("token-malformed", "token is malformed")
    prefix, payload, mac = token.split(".")
    if prefix != PREFIX:
        raise TokenError("token-malformed", "token is malformed")
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("token-malformed", "token is malformed") from None
    if not isinstance(body, dict) or not isinstance(body.get("site"), str):
        raise TokenError("token-malformed", "token is malformed")
    secret = secret_for(body["site"])
    if secret is None:
        raise TokenError("token-site", "token names no site that accepts tokens")
    if not hmac.compare_digest(_mac(secret, f"{prefix}.{payload}"), mac):
        raise TokenError("token-signature", "token signature is wrong")
    exp, nonce = body.get("exp"), body.get("nonce")
    target, number = body.get("target"), body.get("number")
    if (not isinstance(exp, int) or isinstance(exp, bool) or not isinstance(nonce, str) or not nonce
            or not isinstance(target, str | None) or not isinstance(number, str | None)):
        raise TokenError("token-malformed", "token is malformed")
    if now >= exp:
        raise TokenError("token-expired", "token has expired")
    return TokenClaims(body["site"], exp, nonce, target, number)


class NonceLedger:
    """Nonces already used, kept until their token expires (then a replay fails as expired)."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}
        self._prune_at = 1024

    def seen(self, nonce: str) -> bool:
        return nonce in self._used

    def use(self, nonce: str, expires: float, now: float) -> bool:
        """True the first time a nonce is presented; it is remembered until `expires`."""
        if len(self._used) >= self._prune_at:
            self._used = {n: e for n, e in self._used.items() if e > now}
            self._prune_at = max(1024, 2 * len(self._used))
        if nonce in self._used:
            return False
        self._used[nonce] = expires
        return True
