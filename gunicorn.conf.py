"""gunicorn settings for Consent Gateway (`gunicorn 'gateway:create_app()'` reads this file).

No access log: request paths carry raw subject ids; the gateway logs its own
request lines with the route template and a request id instead. gunicorn's own
error log goes through `gateway.serving.RedactingLogger`, which withholds the
request line of a malformed request and the URI of a failed one.

The master also starts the webhook delivery worker (`flask --app gateway webhooks work`) as
its child, once, however many web workers there are, and restarts it if it exits;
GATEWAY_WEBHOOK_WORKER=off leaves delivery to a worker run apart.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
errorlog = "-"
logger_class = "gateway.serving.RedactingLogger"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def when_ready(server):
    """One webhook delivery worker per master, beside the web workers (gateway/serving_webhooks.py)."""
    from gateway.serving_webhooks import start

    server.webhook_worker = start(server.log)


def on_exit(server):
    worker = getattr(server, "webhook_worker", None)
    if worker is not None:
        worker.stop()
