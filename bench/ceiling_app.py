"""The ceiling: a bare Flask app that answers a small JSON, run under the gateway's gunicorn settings.

    gunicorn --config gunicorn.conf.py 'bench.ceiling_app:create_app()'

It does what every gateway request does at least (route a path with a subject id,
build a JSON response) and nothing else: no database, no authentication, no audit.
Its throughput on the same machine, in the same run, is what the gateway's figures
are divided by.
"""

from __future__ import annotations

from flask import Flask, jsonify


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/ceiling/<path:subject_id>")
    def ceiling(subject_id: str):
        return jsonify({"subject_id": subject_id, "ok": True})

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app
