"""The database service: `db upgrade` goes through it to the store's migrations."""

from __future__ import annotations

from gateway.services import database
from gateway.store import migrate


def test_upgrade_reports_the_revisions_at_head(gw):
    assert database.upgrade(gw) == sorted(migrate.head_revisions())
    assert database.upgrade(gw) == sorted(migrate.head_revisions())  # idempotent


def test_the_command_prints_what_the_service_returns(runner, gw):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"database at {', '.join(sorted(migrate.head_revisions()))}"


def test_the_command_line_checks_subject_ids_with_the_core_rule(runner, gw):
    result = runner.invoke(args=["subjects", "export", "line\nbreak"])
    assert result.exit_code != 0
    assert "subject_id must contain printable characters only" in result.output
    assert "Traceback" not in result.output
