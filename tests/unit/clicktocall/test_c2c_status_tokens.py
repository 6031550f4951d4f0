"""Request statuses and signed tokens: pure logic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.clicktocall.core.status import STATUSES, TERMINAL, RequestStatus, from_item_update
from ari_app.clicktocall.core.tokens import NonceLedger, TokenClaims, TokenError, sign, verify


def test_agent_first_history_from_the_acd_updates():
    st_ = RequestStatus("r1", "agent-first")
    st_.advance("queued", 1)
    for at, (kind, agent, detail) in enumerate([("agent-ringing", "a1", None), ("agent-answered", "a1", None),
                                                ("customer-ringing", "a1", None), ("connected", "a1", None),
                                                ("completed", "a1", "caller")], start=2):
        status, reason = from_item_update(kind, detail)
        st_.advance(status, at, agent_id=agent, reason=reason)
    assert [c.status for c in st_.history] == ["queued", "agent-ringing", "agent-answered", "customer-ringing",
                                               "connected", "completed"]
    assert st_.done and st_.reason == "customer-hangup" and st_.agent_id == "a1"


@pytest.mark.parametrize(("kind", "detail", "expected"), [
    ("customer-failed", "noanswer", ("failed", "customer-noanswer")),
    ("customer-failed", "busy", ("failed", "customer-busy")),
    ("exited", "timeout", ("failed", "queue-timeout")),
    ("abandoned", None, ("failed", "customer-hangup")),
    ("completed", "agent", ("completed", "agent-hangup")),
    ("something-else", None, None),
])
def test_item_updates_map_to_statuses(kind, detail, expected):
    assert from_item_update(kind, detail) == expected


def test_terminal_is_final_and_connected_never_goes_back():
    st_ = RequestStatus("r", "agent-first")
    assert st_.advance("connected", 1)
    assert not st_.advance("agent-ringing", 2)
    assert st_.advance("failed", 3) and st_.reason == "failed"
    assert not st_.advance("completed", 4)
    assert st_.status == "failed"


def test_repeats_are_not_news_but_another_agent_ringing_is():
    st_ = RequestStatus("r", "agent-first")
    assert st_.advance("agent-ringing", 1, agent_id="a1")
    assert not st_.advance("agent-ringing", 2, agent_id="a1")
    assert st_.advance("agent-ringing", 3, agent_id="a2")
    with pytest.raises(ValueError):
        st_.advance("dancing", 4)


@given(st.lists(st.tuples(st.sampled_from(STATUSES), st.floats(-10, 10, allow_nan=False)), max_size=30))
def test_history_properties(steps):
    st_ = RequestStatus("r", "agent-first")
    for status, at in steps:
        st_.advance(status, at)
    statuses = [c.status for c in st_.history]
    times = [c.at for c in st_.history]
    assert times == sorted(times)                                   # time never runs backwards
    assert all(s not in TERMINAL for s in statuses[:-1])            # terminal only at the end
    if "connected" in statuses:
        after = statuses[statuses.index("connected") + 1:]
        assert all(s in TERMINAL for s in after)
    assert all(a != b for a, b in zip(statuses, statuses[1:], strict=False))  # no repeats without an agent


# --------------------------------------------------------------------------- tokens
SECRETS = {"shop": b"s3cret-shop", "blog": b"s3cret-blog"}


def secret_for(site: str) -> bytes | None:
    return SECRETS.get(site)


def test_token_roundtrip_with_bindings():
    claims = TokenClaims("shop", 1000, "n1", "queue:sales", "+33612345678")
    assert verify(sign(SECRETS["shop"], claims), secret_for, 999) == claims


@pytest.mark.parametrize(("token", "reason"), [
    ("", "token-malformed"),
    ("c2c1.abc", "token-malformed"),
    ("c2c2.e30.xx", "token-malformed"),
    ("c2c1.!!!.xx", "token-malformed"),
    ("c2c1." + "A" * 3000 + ".x", "token-malformed"),
])
def test_malformed_tokens(token, reason):
    with pytest.raises(TokenError) as info:
        verify(token, secret_for, 0)
    assert info.value.reason == reason


def test_token_signed_with_another_sites_secret_or_tampered_is_refused():
    good = sign(SECRETS["shop"], TokenClaims("shop", 1000, "n1"))
    forged = sign(SECRETS["blog"], TokenClaims("shop", 1000, "n1"))
    with pytest.raises(TokenError) as info:
        verify(forged, secret_for, 0)
    assert info.value.reason == "token-signature"
    prefix, payload, mac = good.split(".")
    other = sign(SECRETS["shop"], TokenClaims("shop", 99999, "n1")).split(".")[1]
    with pytest.raises(TokenError) as info:
        verify(f"{prefix}.{other}.{mac}", secret_for, 0)
    assert info.value.reason == "token-signature"
    with pytest.raises(TokenError) as info:
        verify(sign(b"x", TokenClaims("nosuchsite", 1000, "n1")), secret_for, 0)
    assert info.value.reason == "token-site"


def test_expired_token_is_refused():
    token = sign(SECRETS["shop"], TokenClaims("shop", 1000, "n1"))
    with pytest.raises(TokenError) as info:
        verify(token, secret_for, 1000)
    assert info.value.reason == "token-expired"


def test_nonce_is_used_once_and_forgotten_after_expiry():
    ledger = NonceLedger()
    assert ledger.use("n1", 100, 0) and ledger.seen("n1")
    assert not ledger.use("n1", 100, 1)
    for i in range(2047):            # pruned at 1024 (nothing expired yet); next prune at 2048
        ledger.use(f"m{i}", 50, 0)
    ledger.use("late", 500, 200)     # the 2048th: pruning drops every expired nonce
    assert not ledger.seen("n1") and not ledger.seen("m1") and ledger.seen("late")
