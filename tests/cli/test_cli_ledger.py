"""CLI: policy check, properties, db upgrade; readable errors, no tracebacks."""

from __future__ import annotations

import json
import shutil

import sqlalchemy as sa


def test_policy_check_valid(runner, policy_dir):
    result = runner.invoke(args=["policy", "check", str(policy_dir)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


def test_policy_check_names_file_entry_and_problem(runner, policy_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(policy_dir, broken)
    text = (broken / "purposes.yaml").read_text().replace("legal_basis: contract", "legal_basis: x")
    (broken / "purposes.yaml").write_text(text)
    result = runner.invoke(args=["policy", "check", str(broken)])
    assert result.exit_code == 1
    assert "purposes.yaml: purpose 'service': 'legal_basis' must be one of" in result.output
    assert "Traceback" not in result.output


def test_policy_check_missing_directory(runner, tmp_path):
    result = runner.invoke(args=["policy", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "is not a directory" in result.output


def test_properties_create_prints_contract_json(runner, gw):
    result = runner.invoke(args=["properties", "create", "--name", "Shop",
                                 "--origin", "https://Shop.example/", "--origin",
                                 "http://localhost:8000"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"property_id", "property_key", "origins"}
    assert data["origins"] == ["https://shop.example", "http://localhost:8000"]
    with gw.db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash FROM properties")).scalar_one()
        audited = conn.execute(sa.text(
            "SELECT COUNT(*) FROM audit_events WHERE type = 'property.created'")).scalar_one()
    assert stored != data["property_key"] and len(stored) == 64
    assert audited == 1
    listed = json.loads(runner.invoke(args=["properties", "list"]).output)
    assert listed[0]["property_id"] == data["property_id"]


def test_properties_create_rejects_bad_origin(runner):
    result = runner.invoke(args=["properties", "create", "--name", "Shop",
                                 "--origin", "shop.example/path"])
    assert result.exit_code == 1
    assert "origins[0]" in result.output and "Traceback" not in result.output


def test_db_upgrade_is_idempotent(runner):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at" in result.output
