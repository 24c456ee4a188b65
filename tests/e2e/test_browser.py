"""End to end in a real browser: the demo shop's banner, hero and explanation, GPC, the console.

The gateway runs as a real process (gunicorn, one worker) on a free port with a fresh
SQLite database, migrated with `flask db upgrade` first, and fixed keys. Playwright drives
Debian's Chromium (`apt-get install chromium chromium-driver`), never a downloaded browser.

Without Chromium or the `playwright` package the tests skip with a message, except under
CI=true, where that fails the run (.ci/run installs Chromium when it is missing).

UPDATE_SCREENSHOTS=1 writes docs/banner.png, docs/explanation.png and docs/console.png.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS", "") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
GPC_ON = "Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})"
VIEWPORT = {"width": 1280, "height": 860}


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"the browser tests must run in CI (CI=true), but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package 'playwright' is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not at {CHROMIUM} (apt-get install chromium chromium-driver)")
    return sync_playwright


# -- the gateway as a real process --------------------------------------------------------------


@dataclass
class Server:
    url: str
    env: dict
    instance: Path
    log: Path

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "gateway", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def get_json(self, path: str, headers: dict | None = None) -> dict:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback only)
            return json.load(response)

    def property_key(self) -> str:
        return (self.instance / "demo_property_key").read_text().strip()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_history(env: dict) -> None:
    """Four weeks of earlier choices, so that the console's chart has lines to draw."""
    from gateway import create_app
    from gateway.core.actor import Actor
    from gateway.services import consent

    app = create_app({k: v for k, v in env.items() if k.startswith(("GATEWAY_", "DATABASE_"))})
    gw = app.extensions["gateway"]
    rng = random.Random(7)
    banner = Actor(kind="property", id="prop_seed")
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    try:
        for days_ago in range(28, 0, -1):
            for n in range(5):
                when = today - timedelta(days=days_ago, minutes=n)
                gw.clock = lambda when=when: when
                consent.record_consent(gw, banner, subject_id=f"seed-{days_ago}-{n}", purposes={
                    "personalization": "granted" if rng.random() < 0.55 + days_ago / 100 else "denied",
                    "ads": "granted" if rng.random() < 0.3 else "denied",
                    "analytics": "denied" if rng.random() < 0.15 else "granted",
                })
    finally:
        gw.db.dispose()


@pytest.fixture(scope="module")
def server(playwright_api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    key = lambda c: base64.b64encode(c * 32).decode()  # noqa: E731
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "DATABASE_URL": f"sqlite:///{tmp / 'gateway.db'}",
        "GATEWAY_INSTANCE_DIR": str(tmp / "instance"),
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_PSEUDONYM_KEY": key(b"k"),
        "GATEWAY_MASTER_KEY": key(b"m"),
        "GATEWAY_AUDIT_SIGNING_KEY": key(b"a"),
        "GATEWAY_SIGNING_KEY_PASSPHRASE": key(b"p"),
        "GATEWAY_AUDIT_SEAL_INTERVAL": "0.2",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_DEMO": "true",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "gateway", "db", "upgrade"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    # the demo's property, for http://127.0.0.1:{PORT} and http://localhost:{PORT} (as make run)
    demo_setup = subprocess.run([sys.executable, "-m", "flask", "--app", "gateway", "demo", "setup"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert demo_setup.returncode == 0, demo_setup.stderr
    _seed_history(env)
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
             "gateway:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:  # noqa: S310 (loopback only)
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the gateway did not start:\n" + log.read_text(errors="replace")[-4000:])
        time.sleep(0.2)
    yield Server(url=url, env=env, instance=tmp / "instance", log=log)
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    print(log.read_text(errors="replace")[-4000:])  # shown by pytest when a test failed


@pytest.fixture(scope="module")
def browser(playwright_api, server):
    with playwright_api() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def context(browser):
    opened = []

    def make(**options):
        ctx = browser.new_context(viewport=VIEWPORT, **options)
        ctx.set_default_timeout(10_000)
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


def shot(page, name: str, **options) -> None:
    if SCREENSHOTS:
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / name), **options)


def focus_in_dialog(page) -> bool:
    return page.evaluate("() => !!document.activeElement.closest('[role=dialog]')")


# -- the shop ------------------------------------------------------------------------------------


def test_banner_personalized_hero_german_explanation_and_withdrawal(server, context):
    from playwright.sync_api import expect

    page = context(locale="de-DE").new_page()
    page.goto(f"{server.url}/demo?lang=de")
    banner = page.get_by_role("dialog", name="Datenschutzeinstellungen")
    expect(banner).to_be_visible()
    assert banner.get_attribute("aria-modal") == "true"
    assert focus_in_dialog(page)
    shot(page, "banner.png")

    accept = banner.get_by_role("button", name="Alle akzeptieren", exact=True)
    reject = banner.get_by_role("button", name="Alle ablehnen", exact=True)
    a, r = accept.bounding_box(), reject.bounding_box()
    assert (round(a["width"]), round(a["height"])) == (round(r["width"]), round(r["height"]))
    styles = ("e => { const s = getComputedStyle(e); "
              "return [s.backgroundColor, s.color, s.fontSize, s.fontWeight]; }")
    assert accept.evaluate(styles) == reject.evaluate(styles)
    boxes = banner.locator("input[type=checkbox]:not([disabled])")
    assert boxes.count() >= 3
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count())), "nothing may be pre-ticked"
    for _ in range(12):  # Tab stays inside the dialog, both ways
        page.keyboard.press("Tab")
        assert focus_in_dialog(page)
    page.keyboard.press("Shift+Tab")
    assert focus_in_dialog(page)
    page.keyboard.press("Escape")  # the first-time banner waits for a choice
    expect(banner).to_be_visible()

    banner.get_by_label("Personalisierte Inhalte").check()
    banner.get_by_role("button", name="Auswahl speichern").click()
    expect(banner).to_be_hidden()
    receipt = page.evaluate("ConsentGateway.getReceipt()")
    statuses = {p["purpose"]: p["status"] for p in receipt["purposes"]}
    assert statuses["personalization"] == "granted" and statuses["ads"] == "denied"
    assert receipt["receipt_id"] == page.evaluate("localStorage.getItem('cg_receipt')")
    subject = page.evaluate("ConsentGateway.getSubjectId()")
    assert subject.startswith("demo-") and subject == page.evaluate("localStorage.getItem('cg_subject')")

    hero = page.locator("#hero")
    expect(hero).to_have_attribute("data-content-id", "generic-hero")  # consent alone is not a profile
    page.get_by_role("button", name="Ich mag Outdoor").click()
    expect(hero).to_have_attribute("data-content-id", "outdoor-jackets")
    expect(hero).to_have_attribute("data-personalized", "true")
    expect(hero.locator("h1")).to_have_text("Outdoor-Jacken für Wind und Wetter")

    why_link = hero.get_by_role("button", name="Warum sehe ich das?")
    why_link.click()
    why = page.get_by_role("dialog", name="Warum sehe ich das?")
    expect(why).to_contain_text(
        "Sie sehen Outdoor-Jacken, weil Sie sich kürzlich Outdoor-Produkte angesehen haben.")
    expect(why).to_contain_text("„Personalisierte Inhalte“")
    assert focus_in_dialog(page)
    shot(page, "explanation.png")
    page.keyboard.press("Escape")
    expect(why).to_be_hidden()
    assert page.evaluate("document.activeElement.textContent") == "Warum sehe ich das?"  # focus returned

    page.locator(".cg-settings").click()
    prefs = page.get_by_role("dialog", name="Datenschutzeinstellungen")
    # the preference centre shows the choice made
    expect(prefs.get_by_label("Personalisierte Inhalte")).to_be_checked()
    prefs.get_by_role("button", name="Alle ablehnen", exact=True).click()
    expect(prefs).to_be_hidden()
    expect(hero).to_have_attribute("data-content-id", "generic-hero")
    expect(hero).to_have_attribute("data-personalized", "false")
    state = {p["purpose"]: p["status"] for p in page.evaluate("ConsentGateway.getState()")["purposes"]}
    assert state["personalization"] == "withdrawn"

    page.locator(".cg-settings").click()  # Escape closes the preference centre, changing nothing
    expect(prefs).to_be_visible()
    page.keyboard.press("Escape")
    expect(prefs).to_be_hidden()


def test_with_global_privacy_control_ads_are_denied(server, context):
    from playwright.sync_api import expect

    ctx = context(locale="en-GB")
    ctx.add_init_script(GPC_ON)
    page = ctx.new_page()
    page.goto(f"{server.url}/demo?lang=en")
    banner = page.get_by_role("dialog", name="Privacy settings")
    expect(banner).to_be_visible()
    ads = banner.get_by_label("Advertising")
    expect(ads).to_be_disabled()
    expect(ads).not_to_be_checked()
    expect(banner).to_contain_text("Global Privacy Control")
    banner.get_by_role("button", name="Accept all", exact=True).click()
    expect(banner).to_be_hidden()
    receipt = page.evaluate("ConsentGateway.getReceipt()")
    statuses = {p["purpose"]: p["status"] for p in receipt["purposes"]}
    assert statuses["ads"] == "denied"
    assert statuses["personalization"] == "granted"
    assert receipt["consent_mode"]["ad_storage"] == "denied"
    assert receipt["consent_mode"]["personalization_storage"] == "granted"
    subject = page.evaluate("ConsentGateway.getSubjectId()")
    state = server.get_json(f"/v1/subjects/{subject}/consents", {"X-Property-Key": server.property_key()})
    by = {p["purpose"]: p for p in state["purposes"]}
    assert (by["ads"]["status"], by["ads"]["effective"]) == ("denied", False)
    withdrawn = page.evaluate("ConsentGateway.withdraw()")  # the JS API: everything off in one call
    assert {p["purpose"]: p["status"] for p in withdrawn["purposes"]}["personalization"] == "withdrawn"


def test_gtag_gets_the_receipts_consent_mode(server, context):
    from playwright.sync_api import expect

    ctx = context(locale="en-GB")
    ctx.add_init_script("window.gtagCalls = []; "
                        "window.gtag = function () { gtagCalls.push([].slice.call(arguments)); };")
    page = ctx.new_page()
    page.goto(f"{server.url}/demo?lang=en")
    banner = page.get_by_role("dialog", name="Privacy settings")
    banner.get_by_role("button", name="Reject all", exact=True).click()
    expect(banner).to_be_hidden()
    calls = page.evaluate("gtagCalls")
    assert calls[-1][:2] == ["consent", "update"]
    assert calls[-1][2]["ad_storage"] == "denied" and calls[-1][2]["personalization_storage"] == "denied"


def test_adapters_forward_the_choices_of_banners_a_site_already_runs(server, context):
    from playwright.sync_api import expect

    page = context(locale="en-GB").new_page()
    page.goto(f"{server.url}/demo?lang=en")
    expect(page.get_by_role("dialog", name="Privacy settings")).to_be_visible()
    vanilla = page.evaluate("""async () => {
        const seen = [];
        const config = ConsentGateway.adapters.vanillaCookieConsent(
            {categories: {necessary: {}, analytics: {}, marketing: {}}, onConsent: () => seen.push('site')},
            {analytics: 'analytics', marketing: 'ads', recommendations: 'personalization'});
        config.onConsent({cookie: {categories: ['necessary', 'marketing', 'recommendations'], services: {}}});
        await new Promise(r => ConsentGateway.onChange(r));
        const first = ConsentGateway.getReceipt();
        config.onConsent({cookie: {categories: ['necessary', 'marketing', 'recommendations'], services: {}}});
        await new Promise(r => setTimeout(r, 300));
        return {seen, first, again: ConsentGateway.getReceipt(),
                dialogs: document.querySelectorAll('[role=dialog]').length};
    }""")
    assert vanilla["seen"] == ["site", "site"]  # the site's own callback still runs
    assert vanilla["dialogs"] == 0  # the built-in banner steps aside
    statuses = {p["purpose"]: (p["status"], p["method"]) for p in vanilla["first"]["purposes"]}
    assert statuses == {"ads": ("granted", "banner"), "analytics": ("objected", "banner"),
                        "personalization": ("granted", "banner")}
    # the same choices again: no new receipt
    assert vanilla["again"]["receipt_id"] == vanilla["first"]["receipt_id"]

    klaro = page.evaluate("""async () => {
        const calls = [];
        const config = ConsentGateway.adapters.klaro(
            {services: [{name: 'google-ads'}, {name: 'matomo'}], callback: (c, s) => calls.push(s.name)},
            {'google-ads': 'ads', matomo: 'analytics'});
        config.callback(false, {name: 'google-ads'});
        config.callback(true, {name: 'matomo'});
        await new Promise(r => ConsentGateway.onChange(r));
        return {calls, receipt: ConsentGateway.getReceipt()};
    }""")
    assert klaro["calls"] == ["google-ads", "matomo"]
    assert {p["purpose"]: p["status"] for p in klaro["receipt"]["purposes"]} == {
        "ads": "withdrawn", "analytics": "permitted"}  # granted before through the other adapter


# -- the console --------------------------------------------------------------------------------


def test_the_console_shows_the_new_events_the_chart_and_a_verified_export(server, context):
    from playwright.sync_api import expect

    shop = context(locale="en-GB").new_page()
    shop.goto(f"{server.url}/demo?lang=en")
    banner = shop.get_by_role("dialog", name="Privacy settings")
    banner.get_by_role("button", name="Accept all", exact=True).click()
    expect(shop.get_by_role("dialog")).to_have_count(0)
    subject = shop.evaluate("ConsentGateway.getSubjectId()")

    dpo = json.loads(server.cli("clients", "create", "--name", "DPO", "--scope", "audit:read",
                                "--scope", "subject:export", "--scope", "subject:erase"))
    page = context(locale="en-GB").new_page()
    page.goto(f"{server.url}/console")
    page.get_by_label("Client id").fill(dpo["client_id"])
    page.get_by_label("Client secret").fill(dpo["client_secret"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text(dpo["client_id"])
    assert page.evaluate("Object.keys(localStorage).filter(k => !k.startsWith('cg_')).length") == 0
    assert page.evaluate("document.cookie") == ""

    recorded = page.locator("#events-table tbody tr[data-type='consent.recorded']")
    expect(recorded.first).to_be_visible()
    chart = page.locator("#rates-chart")
    expect(chart).to_be_visible()
    assert chart.locator("polyline").count() >= 3 and chart.locator("circle").count() >= 3
    expect(page.locator("#rates-table tbody tr")).to_have_count(4)

    page.locator("#events-type").select_option("decision.made")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#events-table tbody tr[data-type='decision.made']").first).to_be_visible()
    expect(page.locator("#events-table tbody tr[data-type='consent.recorded']")).to_have_count(0)
    page.locator("#events-type").select_option("")
    page.get_by_role("button", name="Apply").click()
    expect(recorded.first).to_be_visible()

    page.get_by_role("button", name="Download and verify").click()
    expect(page.locator("#verify-verdict")).to_have_text("Verified: the export is complete and untouched.")
    checks = page.locator("#verify-checks").inner_text()
    assert "matches the manifest" in checks and "every hash and link holds" in checks
    assert "signature by" in checks or "verify offline with scripts/verify_audit_export.py" in checks

    page.get_by_label("Subject id", exact=True).fill(subject)
    page.get_by_role("button", name="Export (Art. 15/20)").click()
    expect(page.locator("#subject-summary")).to_contain_text("personalization: granted")
    shot(page, "console.png", full_page=True)

    page.get_by_role("button", name="Erase (Art. 17)…").click()
    confirm = page.get_by_role("dialog", name="Erase this subject?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(page.locator("#erase-done")).to_have_count(0)
    page.get_by_role("button", name="Erase (Art. 17)…").click()
    confirm.get_by_role("button", name="Erase", exact=True).click()
    expect(page.locator("#erase-done")).to_contain_text("Erased")
    page.get_by_role("button", name="Export (Art. 15/20)").click()
    expect(page.locator("#subject-summary")).to_contain_text("Erased at")

    page.get_by_role("button", name="Show the report").click()
    expect(page.locator("#report-frame")).to_be_visible()
    frame = page.frame_locator("#report-frame")
    expect(frame.locator("h1")).to_contain_text("Art. 30")
