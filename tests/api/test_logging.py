"""Logs carry a request id and never a raw subject id."""

from __future__ import annotations

import json


def test_request_log_has_request_id_and_no_subject(app, client, banner, capsys):
    from gateway.logging import configure_logging

    configure_logging("INFO", json_lines=True)
    subject = "log-marker-subject-91c2"
    r = client.post("/v1/consents", headers={**banner, "X-Request-ID": "req-123"},
                    json={"subject_id": subject, "purposes": {"ads": "granted"}})
    client.get(f"/v1/subjects/{subject}/consents", headers=banner)
    client.post("/v1/consents", headers=banner, json={"subject_id": subject, "purposes": "bad"})
    assert r.headers["X-Request-ID"] == "req-123"
    err = capsys.readouterr().err
    assert subject not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests and requests[0]["request_id"] == "req-123"
    assert requests[1]["route"] == "/v1/subjects/<path:subject_id>/consents"
