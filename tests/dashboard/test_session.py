"""The sign-in cookie: signed, expiring, bound to the admin token and the secret."""

from __future__ import annotations

import time

import pytest

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.dashboard import session
from feedback_asgi.kit import FeedbackKit

ADMIN = "admin-token-for-session-tests-0123456789"
SECRET = "session-test-secret-0123456789abcdef0123"


def config(**changes: object) -> FeedbackConfig:
    values: dict[str, object] = {"admin_token": ADMIN, "secret_key": SECRET, **changes}
    return FeedbackConfig(**values)


def scope(cookie: str | None, method: str = "GET", **headers: str) -> dict[str, object]:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    if cookie is not None:
        raw.append((b"cookie", f"other=1; {session.COOKIE_NAME}={cookie}; last=2".encode()))
    return {"type": "http", "method": method, "headers": [(b"host", b"example.test"), *raw]}


def test_a_fresh_cookie_verifies_until_it_expires() -> None:
    now = time.time()
    value = session.issue_cookie(config(), now=now, ttl_seconds=60)
    assert session.verify_cookie(config(), value, now=now)
    assert session.verify_cookie(config(), value, now=now + 59)
    assert not session.verify_cookie(config(), value, now=now + 61)


@pytest.mark.parametrize("change", ["signature", "expiry", "nonce", "version", "truncate"])
def test_a_tampered_cookie_is_refused(change: str) -> None:
    value = session.issue_cookie(config())
    version, expires, nonce, signature = value.split(".")
    tampered = {
        "signature": f"{version}.{expires}.{nonce}.{signature[:-1]}{'0' if signature[-1] != '0' else '1'}",
        "expiry": f"{version}.{int(expires) + 3600}.{nonce}.{signature}",
        "nonce": f"{version}.{expires}.{nonce[::-1]}x.{signature}",
        "version": f"v2.{expires}.{nonce}.{signature}",
        "truncate": f"{version}.{expires}.{nonce}",
    }[change]
    assert session.verify_cookie(config(), value)
    assert not session.verify_cookie(config(), tampered)


def test_the_cookie_dies_with_the_admin_token_or_the_secret() -> None:
    value = session.issue_cookie(config())
    assert not session.verify_cookie(config(admin_token="another-admin-token-0123456789"), value)
    assert not session.verify_cookie(config(secret_key="another-secret-0123456789abcdef0123"), value)
    assert not session.verify_cookie(config(admin_token=None), value)
    # a retired secret still verifies (key rotation)
    rotated = config(secret_key="the-new-secret-0123456789abcdef012345", previous_secret_keys=[SECRET])
    assert session.verify_cookie(rotated, value)


def test_no_cookie_without_an_admin_token() -> None:
    with pytest.raises(ValueError, match="admin_token"):
        session.issue_cookie(config(admin_token=None))


async def test_a_feedback_token_is_not_a_cookie() -> None:
    kit = FeedbackKit.for_testing(admin_token=ADMIN, secret_key=SECRET)
    token = kit.signer.sign("dashboard", "anyone")
    assert not session.verify_cookie(kit.config, token)
    assert not await session.cookie_grants(kit, scope(token))


def test_read_cookie_finds_it_among_others() -> None:
    assert session.read_cookie(scope("abc")) == "abc"
    assert session.read_cookie(scope(None)) is None


async def test_cookie_grants_reads_and_only_same_origin_writes() -> None:
    kit = FeedbackKit.for_testing(admin_token=ADMIN, secret_key=SECRET)
    value = session.issue_cookie(kit.config)
    assert await session.cookie_grants(kit, scope(value))
    assert await session.cookie_grants(kit, scope(value, "HEAD"))
    assert not await session.cookie_grants(kit, scope(None))
    assert not await session.cookie_grants(kit, scope("v1.1.x.00"))
    assert await session.cookie_grants(kit, scope(value, "POST", origin="https://example.test"))
    assert not await session.cookie_grants(kit, scope(value, "POST", origin="https://evil.test"))
    assert not await session.cookie_grants(kit, scope(value, "DELETE", origin="null"))
    assert not await session.cookie_grants(kit, scope(value, "PATCH", sec_fetch_site="same-site"))
    assert await session.cookie_grants(kit, scope(value, "PATCH", sec_fetch_site="same-origin"))


def test_set_cookie_flags() -> None:
    name, value = session.set_cookie({"scheme": "https"}, "v", "/feedback", ttl_seconds=120)
    assert name == b"set-cookie"
    attributes = [part.strip() for part in value.decode().split(";")]
    assert attributes[0] == f"{session.COOKIE_NAME}=v"
    assert {"HttpOnly", "SameSite=Strict", "Secure", "Path=/feedback", "Max-Age=120"} <= set(attributes)
    assert any(part.startswith("Expires=") for part in attributes)
    _, plain = session.set_cookie({"scheme": "http"}, "v", "/feedback")
    assert "Secure" not in plain.decode()
    _, cleared = session.clear_cookie({"scheme": "http"}, "/feedback")
    assert f"{session.COOKIE_NAME}=;" in cleared.decode()
    assert "Max-Age=0" in cleared.decode()
