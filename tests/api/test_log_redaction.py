"""No log line carries SQL parameters or a value a client sent, even when the database fails."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

MARKER = "marker-7f3e1c-client-value"


def _failing_add_receipt(dialect: str):
    """A store call that runs a real statement carrying the request's values, which the
    database refuses: the DBAPI error's text then quotes the value (PostgreSQL) or the
    exception message lists the parameters (without hide_parameters)."""
    if dialect == "postgresql":
        sql = "SELECT CAST(:v AS integer)"  # invalid input syntax for type integer: "<v>"
    else:
        sql = "INSERT INTO no_such_table (v) VALUES (:v)"

    def add_receipt(self, values):
        self.s.execute(sa.text(sql), {"v": json.dumps(values["source"])})

    return add_receipt


@pytest.fixture
def logs(capsys, caplog):
    """logs() starts capturing (call it in the test: pytest swaps sys.stderr between setup and
    call) and returns read(): every line logged since, structlog's and the stdlib's."""
    from gateway.logging import configure_logging

    def start():
        configure_logging("DEBUG", json_lines=True)
        caplog.set_level(logging.DEBUG)

        def read() -> str:
            captured = capsys.readouterr()
            handler = logging.getLogger().handlers[0]
            records = "\n".join(handler.format(r) for r in caplog.records)
            return captured.err + captured.out + records

        return read

    return start


def test_a_database_error_logs_neither_the_sql_parameters_nor_the_value(client, gw, banner, logs,
                                                                          monkeypatch):
    from gateway.store import consents

    monkeypatch.setattr(consents.ConsentRepository, "add_receipt", _failing_add_receipt(gw.db.dialect))
    read = logs()
    r = client.post("/v1/consents", headers=banner, json={
        "subject_id": f"subj-{MARKER}", "purposes": {"ads": "granted"},
        "source": {"url": f"https://shop.example/{MARKER}", "banner": MARKER}})
    assert r.status_code == 500
    assert r.mimetype == "application/problem+json"
    assert MARKER not in r.get_data(as_text=True)
    out = read()
    assert "request.failed" in out  # the failure is logged ...
    assert "Traceback" in out and "add_receipt" in out  # ... with its stack ...
    error = "DataError" if gw.db.dialect == "postgresql" else "OperationalError"
    assert error in out
    assert MARKER not in out  # ... and without the value
    assert "no_such_table" not in out and "CAST(" not in out  # nor the statement


def test_the_engine_hides_parameters_from_exception_messages(gw):
    with pytest.raises(sa.exc.DBAPIError) as info, gw.db.engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE v = :v"), {"v": MARKER})
    assert "no_such_table" in str(info.value)
    assert MARKER not in str(info.value)


def test_exception_messages_stay_out_of_every_logger(logs):
    """Also records of other libraries with exc_info (SQLAlchemy's pool logs them so)."""
    read = logs()
    try:
        try:
            raise KeyError(MARKER)
        except KeyError as inner:
            raise ValueError(f"while handling {MARKER}") from inner
    except ValueError as exc:
        logging.getLogger("sqlalchemy.pool").error("Exception during reset", exc_info=exc)
        import structlog

        structlog.get_logger("t").error("boom", exc_info=exc)
    out = read()
    assert out.count("builtins.ValueError") == 2 and out.count("builtins.KeyError") == 2
    assert "direct cause" in out
    assert MARKER not in out


def test_the_development_server_logs_no_request_line(logs):
    read = logs()
    logging.getLogger("werkzeug").info('"%s" %s %s', f"GET /v1/subjects/{MARKER}/consents HTTP/1.1",
                                       200, "-")
    logging.getLogger("werkzeug").error("code %d, message %s", 400, f"Bad request syntax ('{MARKER}')")
    out = read()
    assert "withheld" in out
    assert MARKER not in out
