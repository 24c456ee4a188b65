"""Prometheus metrics at /metrics: request counts and latency by route (never by path).

Protected by GATEWAY_METRICS_TOKEN (a bearer token) when set; without it, production
answers loopback clients only and development answers everyone.

The registry is built per app in `init_app`. Under gunicorn with several
workers set PROMETHEUS_MULTIPROC_DIR to a writable directory so that every
worker's samples are collected.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ..core.errors import Forbidden, Unauthenticated

bp = Blueprint("metrics", __name__)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("gateway_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))

    def output(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _allowed() -> None:
    """GATEWAY_METRICS_TOKEN set: `Authorization: Bearer <it>` (constant-time compare), else 401.
    Not set: loopback clients only in production (403 for others); open in development."""
    settings = current_app.extensions["gateway"].settings
    if settings.metrics_token:
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), settings.metrics_token.encode()):
            raise Unauthenticated("send Authorization: Bearer <GATEWAY_METRICS_TOKEN>")
        return
    if settings.production and not _loopback(request.remote_addr):
        raise Forbidden("/metrics answers loopback clients only (set GATEWAY_METRICS_TOKEN to "
                        "scrape it from elsewhere)")


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics():
    _allowed()
    return Response(current_app.extensions["metrics"].output(), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    m = Metrics()
    app.extensions["metrics"] = m

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        route = request.url_rule.rule if request.url_rule else "(unmatched)"
        m.requests.labels(request.method, route, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            m.latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    app.register_blueprint(bp)
