"""Health and Prometheus metrics over HTTP: GET /health and GET /metrics, nothing else.

The relay's numbers are read when scraped (`metrics()` returns a list of Metric) and
exposed through prometheus_client: a registry holding one collector that turns that list
into metric families, written in the text exposition format by prometheus_client.
`serve_http` is a deliberately tiny HTTP/1.0
server on trio: one request per connection, a 8 KiB request limit, a 10 s read deadline.
It binds to localhost by default (relay.toml `metrics.listen`): the numbers say who uses
the relay, so expose them on purpose or not at all.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric as MetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

log = logging.getLogger("murmurate.relay.metrics")

MAX_REQUEST = 8 * 1024


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str      # "gauge" or "counter"
    help: str
    value: float


class _Scrape:
    """A prometheus_client collector: the relay's samples, read afresh at each scrape."""

    def __init__(self, metrics: Callable[[], list[Metric]]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[MetricFamily]:
        for m in self.metrics():
            family = CounterMetricFamily if m.kind == "counter" else GaugeMetricFamily
            yield family(m.name, m.help, value=m.value)


def registry_of(metrics: Callable[[], list[Metric]]) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one, which would add the
    process's own metrics) that reads `metrics()` at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(metrics))
    return registry


def render(metrics: list[Metric]) -> str:
    """Prometheus text exposition format 0.0.4, by prometheus_client."""
    return generate_latest(registry_of(lambda: metrics)).decode()


class Rate:
    """Events per second over about the last minute, from a counter sampled on each read.
    The clock is passed in (monotonic seconds)."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, count: int) -> float:
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        first_t, first_c = self._samples[0]
        return (count - first_c) / (now - first_t) if now > first_t else 0.0


def answer(request: bytes, health: Callable[[], dict], metrics: CollectorRegistry) -> bytes:
    """The whole HTTP response to one request. Pure apart from reading health and metrics."""
    line = request.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _response(400, "text/plain", b"bad request\n")
    method, path = parts[0], parts[1].split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return _response(405, "text/plain", b"only GET\n")
    if path == "/health":
        state = health()
        body = (json.dumps(state, sort_keys=True) + "\n").encode()
        return _response(200 if state.get("status") == "ok" else 503, "application/json", body, method == "HEAD")
    if path == "/metrics":
        # Format 0.0.4 is what generate_latest writes with its default (underscore) escaping.
        return _response(200, CONTENT_TYPE_PLAIN_0_0_4, generate_latest(metrics), method == "HEAD")
    return _response(404, "text/plain", b"try /health or /metrics\n")


def _response(status: int, ctype: str, body: bytes, head_only: bool = False) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
              503: "Service Unavailable"}[status]
    header = (f"HTTP/1.0 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
              "Connection: close\r\n\r\n").encode()
    return header + (b"" if head_only else body)


async def serve_http(host: str, port: int, health: Callable[[], dict], metrics: Callable[[], list[Metric]], *,
                     task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; reports the bound port (port 0 picks one) through task_status."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    registry = registry_of(metrics)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            data = b""
            with trio.move_on_after(10):
                while b"\r\n\r\n" not in data and len(data) < MAX_REQUEST:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    data += chunk
            await stream.send_all(answer(data, health, registry))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:  # a bug in a gauge must not take the relay down
            log.exception("metrics request failed")
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        bound = listeners[0].socket.getsockname()[1]
        task_status.started(bound)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


