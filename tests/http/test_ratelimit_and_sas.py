"""The token bucket with a fake clock, and Event Hubs SharedAccessSignatures made as Azure's SDK
samples make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import pytest

from hub.auth.authenticator import AuthConfig, Authenticator
from hub.auth.principal import Principal
from hub.http_api import sas
from hub.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- rate limiting --------------------------------------------------------------------------------


def test_a_full_bucket_then_refusals_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(5, clock=clock)
    decisions = [limiter.take("u", "t") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after == pytest.approx(0.2)
    assert refused.headers() == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
        "Retry-After": "1",
    }
    clock.now += 0.2
    assert limiter.take("u", "t").allowed
    assert not limiter.take("u", "t").allowed
    clock.now += 10
    assert limiter.take("u", "t").remaining == 4  # refilled to the burst, not beyond


def test_buckets_are_per_user_and_topic() -> None:
    limiter = RateLimiter(1, clock=Clock())
    assert limiter.take("a", "t").allowed
    assert not limiter.take("a", "t").allowed
    assert limiter.take("b", "t").allowed  # another token
    assert limiter.take("a", "other").allowed  # another topic


def test_slow_rates_and_retry_after_in_whole_seconds() -> None:
    clock = Clock()
    limiter = RateLimiter(0.25, clock=clock)  # one request every 4 s, burst 1
    assert limiter.take("u", "t").allowed
    refused = limiter.take("u", "t")
    assert not refused.allowed and refused.retry_after == pytest.approx(4.0)
    assert refused.headers()["Retry-After"] == "4" and refused.headers()["X-RateLimit-Reset"] == "4"
    clock.now += 3.5
    assert limiter.take("u", "t").headers()["Retry-After"] == "1"  # 0.5 s rounds up to 1


def test_idle_buckets_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    for i in range(1000):
        limiter.take(f"user{i}", "t")
    clock.now += 5
    for _ in range(100):
        limiter.take("busy", "t")
    assert len(limiter) < 100


def test_buckets_stay_within_their_bound_and_recent_pairs_stay_limited() -> None:
    clock = Clock()
    limiter = RateLimiter(1, clock=clock, max_buckets=50)  # burst 1, no time passes
    assert limiter.take("busy", "t").allowed
    for i in range(500):  # ten times the bound of distinct pairs, none idle long enough to be full
        assert limiter.take(f"user{i}", "t").allowed
        assert len(limiter) <= 50
        if i % 10 == 0:
            assert not limiter.take("busy", "t").allowed  # used recently: still remembered, still limited
    assert not limiter.take("user499", "t").allowed
    clock.now += 1.0  # everything is full again: the next sweep forgets it all
    for i in range(1024):
        limiter.take("busy", "t")
    assert len(limiter) == 1


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


# --- SharedAccessSignature ---------------------------------------------------------------------------


def azure_sample_token(namespace: str, hub: str, key_name: str, key: str, expiry: int) -> str:
    """Word for word what Azure's Python REST sample does (get_auth_token)."""
    uri = urllib.parse.quote_plus(f"https://{namespace}.servicebus.windows.net/{hub}")
    string_to_sign = (uri + "\n" + str(expiry)).encode("utf-8")
    signed = hmac.HMAC(key.encode("utf-8"), string_to_sign, hashlib.sha256)
    signature = urllib.parse.quote(base64.b64encode(signed.digest()))
    return f"SharedAccessSignature sr={uri}&sig={signature}&se={expiry}&skn={key_name}"


def verify(auth: Authenticator, header: str, path: str) -> Principal | None:
    signature = sas.parse(header)
    assert signature.covers(path)
    return next(
        (u for m in signature.signed_messages() if (u := auth.principal_for_signature(m, signature.signature))), None
    )


def test_an_azure_sample_signature_made_with_a_hub_token_is_accepted() -> None:
    auth = Authenticator(AuthConfig(tokens=("hub-token-1", "hub-token-2")))
    header = azure_sample_token("myns", "telemetry", "RootManageSharedAccessKey", "hub-token-2", int(time.time()) + 60)
    assert verify(auth, header, "/telemetry/messages") == auth.principal_for("hub-token-2")
    assert sas.sign("https://myns.servicebus.windows.net/telemetry", "hub-token-2", "RootManageSharedAccessKey",
                    int(header.rsplit("se=", 1)[1].split("&")[0])) == header


def test_a_signature_with_another_key_is_refused() -> None:
    auth = Authenticator(AuthConfig(tokens=("hub-token-1",)))
    header = azure_sample_token("myns", "telemetry", "k", "not-a-hub-token", int(time.time()) + 60)
    assert verify(auth, header, "/telemetry/messages") is None


def test_sr_sent_unencoded_still_verifies() -> None:
    auth = Authenticator(AuthConfig(tokens=("tok",)))
    expiry = int(time.time()) + 60
    sr = urllib.parse.quote_plus("https://ns.servicebus.windows.net/hub")
    sig = base64.b64encode(hmac.new(b"tok", f"{sr}\n{expiry}".encode(), hashlib.sha256).digest()).decode()
    header = f"SharedAccessSignature sr=https://ns.servicebus.windows.net/hub&sig={urllib.parse.quote(sig)}&se={expiry}&skn=x"
    assert verify(auth, header, "/hub/messages") == auth.principal_for("tok")


def test_expired_and_malformed_signatures() -> None:
    past = azure_sample_token("ns", "hub", "k", "tok", int(time.time()) - 1)
    with pytest.raises(sas.SasError, match="expired"):
        sas.parse(past)
    with pytest.raises(sas.SasError, match="lacks sig"):
        sas.parse("SharedAccessSignature sr=x&se=99999999999")
    with pytest.raises(sas.SasError, match="se must be"):
        sas.parse("SharedAccessSignature sr=x&sig=AAAA&se=soon")
    with pytest.raises(sas.SasError, match="base64"):
        sas.parse("SharedAccessSignature sr=x&sig=%%%&se=99999999999")


@pytest.mark.parametrize(
    ("sr", "path", "covered"),
    [
        ("https://ns.servicebus.windows.net/telemetry", "/telemetry/messages", True),
        ("https%3A%2F%2Fns.servicebus.windows.net%2FTelemetry", "/telemetry/messages", True),
        ("https://ns.servicebus.windows.net/", "/anything/messages", True),
        ("sb://ns.servicebus.windows.net", "/anything/messages", True),
        ("https://ns.servicebus.windows.net/telemetry", "/telemetry2/messages", False),
        ("https://ns.servicebus.windows.net/other", "/telemetry/messages", False),
    ],
)
def test_the_signature_must_cover_the_entity(sr: str, path: str, covered: bool) -> None:
    signature = sas.SharedAccessSignature(sr, b"", 0)
    assert signature.covers(path) is covered
