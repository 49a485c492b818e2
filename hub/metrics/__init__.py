"""Prometheus metrics: `GET /metrics` (prometheus-client's text format), off with --no-metrics.

    registry.py    HubMetrics: the app's own registry, the store/refusal/rate-limit families, wiring
    signalr.py     SignalRMetrics: a hub's HubObserver that counts connections and invocations
    writes.py      WrittenCounts: a StreamService's WriteTally (events, parameter rows, quarantined)
    http.py        HttpRequestMetrics: the ASGI middleware counting and timing HTTP requests by route
    durations.py   Durations: a histogram cheap enough for the invocation hot path
    scrape.py      MetricsEndpoint: the route, its optional token, its OpenAPI Operation

The SignalR server and the stream store never import this package: they tell small observers they
define themselves (hub/signalr/observer.py, StreamService's WriteTally, StreamStore.observe_commits,
plain counters of refusals), and the app wires these in (hub/app.py). The list of metrics is in the
README ("Operating it").
"""

from .registry import HubMetrics
from .scrape import MetricsEndpoint

__all__ = ["HubMetrics", "MetricsEndpoint"]
