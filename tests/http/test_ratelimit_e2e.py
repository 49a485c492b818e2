"""--rate-limit against the real hub process (1 request/s per token and topic): headers on every
response, 429 with Retry-After past the budget, and SignalR invocations (pysignalr) of the same token
on the same topic drawing on the same budget, refused with a Completion error saying when to retry."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from e2e.support import events_url
from e2e.test_python_clients import pysignalr_client, pysignalr_invoke

pytestmark = pytest.mark.e2e

EVENT = [{"id": "e", "timestamp": 1, "value": "v"}]


def post(client: httpx.Client, topic: str) -> httpx.Response:
    return client.post(events_url(topic, "s"), json=EVENT)


def test_headers_then_429_with_retry_after(limited_hub, unique, wait_for):
    topic = unique("t")
    with limited_hub.http() as client:
        first, second = post(client, topic), post(client, topic)
        assert (first.status_code, second.status_code) == (200, 429)
        assert first.headers["X-RateLimit-Limit"] == "1"
        assert [r.headers["X-RateLimit-Remaining"] for r in (first, second)] == ["0", "0"]
        assert second.headers["X-RateLimit-Reset"] == "1"
        assert second.headers["Retry-After"] == "1"
        assert second.json()["error"].startswith(f"Rate limit of 1 requests/s for this token on topic '{topic}' exceeded; retry in ")

        # reads of the topic spend the same budget; other topics and other tokens have their own
        assert client.get(f"/topics/{topic}/streams").status_code == 429
        assert post(client, unique("other")).status_code == 200
        with limited_hub.http(headers={"Authorization": f"Bearer {limited_hub.tokens[1]}"}) as other:
            assert post(other, topic).status_code == 200
        # routes that name no topic are not limited
        listing = client.get("/topics")
        assert listing.status_code == 200 and "X-RateLimit-Limit" not in listing.headers

        # after Retry-After, the budget is back (polled slower than it refills)
        wait_for(lambda: post(client, topic).status_code == 200, timeout=5, interval=1.1, message="budget refilled")


def test_a_bad_request_still_spends_and_reports_the_budget(limited_hub, unique):
    topic = unique("t")
    with limited_hub.http() as client:
        bad = client.post(events_url(topic, "s"), content=b"[", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.headers["X-RateLimit-Remaining"] == "0"
        assert post(client, topic).status_code == 429  # the bad request spent the budget


def test_no_rate_limit_headers_when_off(shared_hub, unique):
    with shared_hub.http() as client:
        response = post(client, unique("t"))
    assert response.status_code == 200 and not any(h.lower().startswith("x-ratelimit") for h in response.headers)


async def test_signalr_and_http_share_the_budget(limited_hub, unique):
    topic = unique("t")
    async with pysignalr_client(limited_hub.hub_url, headers=limited_hub.auth_headers) as client:
        client.on_error(_ignore)
        async with httpx.AsyncClient(base_url=limited_hub.url, headers=limited_hub.auth_headers) as http:
            # HTTP spends the budget, SignalR is refused
            assert (await http.post(events_url(topic, "s"), json=EVENT)).status_code == 200
            refused = await pysignalr_invoke(client, "SendEventData", [topic, "s", EVENT])
            assert refused.error is not None
            assert f"Rate limit of 1 requests/s for this token on topic '{topic}' exceeded; retry in " in refused.error
            assert refused.error.startswith("An unexpected error occurred invoking 'SendEventData' on the server. HubException: ")

            # SignalR spends the budget, HTTP is refused
            other = unique("t")
            completion = await pysignalr_invoke(client, "SendEventData", [other, "s", EVENT])
            assert completion.error is None, completion
            response = await http.post(events_url(other, "s"), json=EVENT)
            assert response.status_code == 429 and response.headers["Retry-After"] == "1"

            # the connection survives a refusal: once the budget is back, it writes again
            for _ in range(20):
                completion = await pysignalr_invoke(client, "SendEventData", [topic, "s", EVENT])
                if completion.error is None:
                    break
                await asyncio.sleep(0.25)
            assert completion.error is None, completion


async def _ignore(message) -> None:
    pass
