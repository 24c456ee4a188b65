"""Prometheus metrics at /metrics: request counts and latency by route (never by path).

The registry is built per app in `init_app`. Under gunicorn with several
workers set PROMETHEUS_MULTIPROC_DIR to a writable directory so that every
worker's samples are collected.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

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


@bp.get("/metrics")
def metrics():
    from flask import current_app

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
