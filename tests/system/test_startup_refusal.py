"""The gateway refuses to start on an invalid policy: the app factory, gunicorn and `make run`.

The invalid policy is the demo policy with one data use that is not in the Fides
taxonomy, so the error to read is known: it names the file, the purpose and what is wrong.
Each process gets a timeout and its own scratch database and instance directory.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.core.errors import PolicyInvalid

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = ("purposes.yaml: purpose 'ads': 'data_use' 'marketing.nonsense.third_party.targeted' "
           "is not a data use")
START_TIMEOUT = 90


@pytest.fixture
def bad_policy(tmp_path) -> Path:
    target = tmp_path / "bad-policy"
    shutil.copytree(ROOT / "policies", target)
    purposes = target / "purposes.yaml"
    text = purposes.read_text()
    assert "data_use: marketing.advertising" in text
    purposes.write_text(text.replace("data_use: marketing.advertising", "data_use: marketing.nonsense", 1))
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, policy_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "GUNICORN_", "DATABASE_URL", "MAKE", "MFLAGS"))}
    env.update({
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_INSTANCE_DIR": str(tmp_path / "instance"),
        "GATEWAY_POLICY_DIR": str(policy_dir),
        "GATEWAY_PSEUDONYM_KEY": base64.b64encode(b"p" * 32).decode(),
        "GATEWAY_MASTER_KEY": base64.b64encode(b"q" * 32).decode(),
        "GATEWAY_LOG_LEVEL": "WARNING",
    })
    return env


def _serving(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- the app factory --------------------------------------------------------------------------

def test_create_app_raises_on_an_invalid_policy(app_config, bad_policy):
    from gateway import create_app

    with pytest.raises(PolicyInvalid) as caught:
        create_app({**app_config, "GATEWAY_POLICY_DIR": str(bad_policy)})
    assert PROBLEM in str(caught.value)
    assert "is not a data use of the Fides taxonomy" in str(caught.value)


@pytest.mark.parametrize("breakage", ["missing directory", "no purposes.yaml", "not YAML"])
def test_create_app_raises_on_a_missing_or_unreadable_policy(app_config, tmp_path, breakage):
    from gateway import create_app

    target = tmp_path / "policy"
    if breakage != "missing directory":
        shutil.copytree(ROOT / "policies", target)
        if breakage == "no purposes.yaml":
            (target / "purposes.yaml").unlink()
        else:
            (target / "purposes.yaml").write_text("purposes: [unclosed\n")
    with pytest.raises(PolicyInvalid):
        create_app({**app_config, "GATEWAY_POLICY_DIR": str(target)})


def test_create_app_starts_on_the_valid_policy(app_config):
    from gateway import create_app

    app = create_app(app_config)
    try:
        assert app.extensions["gateway"].policy is not None
    finally:
        app.extensions["gateway"].db.dispose()


# --- real processes ---------------------------------------------------------------------------

@pytest.mark.slow
def test_gunicorn_exits_with_the_policy_error(tmp_path, bad_policy):
    port = _free_port()
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "gunicorn.conf.py", "gateway:create_app()"],
        cwd=ROOT, env=_env(tmp_path, bad_policy, port), capture_output=True, text=True,
        timeout=START_TIMEOUT)
    assert result.returncode != 0
    assert PROBLEM in result.stderr, result.stderr[-3000:]
    assert not _serving(port)


@pytest.mark.slow
def test_make_run_exits_before_serving(tmp_path, bad_policy):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = _free_port()
    result = subprocess.run(["make", "--no-print-directory", "run", f"PORT={port}"], cwd=ROOT,
                            env=_env(tmp_path, bad_policy, port), capture_output=True, text=True,
                            timeout=START_TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert PROBLEM in output, output[-3000:]
    assert "gunicorn" not in result.stdout.split("policy check")[-1]  # stopped at the check
    assert "Listening at" not in output
    assert not _serving(port)


@pytest.mark.slow
def test_gunicorn_starts_on_the_valid_policy(tmp_path):
    """The control: the same command with the demo policy does serve (then it is stopped)."""
    port = _free_port()
    env = _env(tmp_path, ROOT / "policies", port)
    subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "gateway", "db", "upgrade"],
                   cwd=ROOT, env=env, capture_output=True, timeout=START_TIMEOUT, check=True)
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "gunicorn.conf.py", "gateway:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
