"""The console's in-browser check of the audit export never calls a broken export verified.

A real gateway (the fixtures of test_browser.py) serves the console; Playwright swaps the
export the page downloads for a tampered one (tests/audit_exports.py, the cases the test of
scripts/verify_audit_export.py runs too) and reads the verdict: "verified" only when every
check holds, the Ed25519 signature included, and otherwise the first line that fails.
"""

from __future__ import annotations

import json
import re

import pytest
from audit_exports import TAMPERING, TRICKY, build
from test_browser import CHROMIUM_ARGS, VIEWPORT, browser, playwright_api, server  # noqa: F401

from gateway.security import signing

NO_ED25519 = """(() => {
  const importKey = crypto.subtle.importKey.bind(crypto.subtle);
  crypto.subtle.importKey = function (format, data, algorithm, ...rest) {
    const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
    if (name === 'Ed25519') {
      return Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
    }
    return importKey(format, data, algorithm, ...rest);
  };
})()"""
NO_WEBCRYPTO = "Object.defineProperty(window.crypto, 'subtle', {value: undefined})"


@pytest.fixture(scope="module")
def key(server):  # noqa: F811 (the fixture imported above)
    return signing.parse_private_key(server.env["GATEWAY_AUDIT_SIGNING_KEY"], "GATEWAY_AUDIT_SIGNING_KEY")


@pytest.fixture(scope="module")
def dpo(server):  # noqa: F811
    return json.loads(server.cli("clients", "create", "--name", "DPO verify", "--scope", "audit:read"))


class Console:
    """A signed-in console page whose audit export is replaced by `serve(lines)` or `edit(lines)`."""

    def __init__(self, page, key):
        self.page, self.key, self.edit, self.lines = page, key, None, None
        page.route("**/v1/audit/events", self._export)

    def _export(self, route):
        if self.lines is not None:
            route.fulfill(status=200, content_type="application/x-ndjson", body=b"".join(self.lines))
            return
        response = route.fetch()
        lines = response.body().splitlines(keepends=True)
        if self.edit is not None:
            lines = self.edit(lines, self.key)
        self.served = lines
        route.fulfill(response=response, body=b"".join(lines))

    def verify(self, edit=None, lines=None) -> dict:
        self.edit, self.lines, self.served = edit, lines, lines
        self.page.evaluate("document.getElementById('export-result').replaceChildren()")
        self.page.get_by_role("button", name="Download and verify").click()
        verdict = self.page.locator("#verify-verdict")
        verdict.wait_for()
        checks = {item.get_attribute("data-check"): (item.get_attribute("data-status"), item.inner_text())
                  for item in self.page.locator("#verify-checks li").all()}
        return {"state": verdict.get_attribute("data-verdict"), "text": verdict.inner_text(),
                "checks": checks, "class": verdict.get_attribute("class")}


def signed_in(browser, server, dpo, key, init_script=None) -> Console:  # noqa: F811
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    ctx.set_default_timeout(15_000)
    if init_script:
        ctx.add_init_script(init_script)
    page = ctx.new_page()
    page.goto(f"{server.url}/console")
    page.get_by_label("Client id").fill(dpo["client_id"])
    page.get_by_label("Client secret").fill(dpo["client_secret"])
    page.get_by_role("button", name="Sign in").click()
    page.locator("#app").wait_for()
    return Console(page, key)


@pytest.fixture(scope="module")
def console(browser, server, dpo, key):  # noqa: F811
    console = signed_in(browser, server, dpo, key)
    yield console
    console.page.context.close()


def test_the_untouched_export_is_verified_with_its_signature_checked(console):
    result = console.verify()
    assert result["state"] == "verified" and result["class"] == "ok"
    assert result["text"] == "Verified: the export is complete and untouched."
    assert set(result["checks"]) == {"events", "signature", "manifest", "sha256"}
    assert all(status == "ok" for status, _ in result["checks"].values()), result["checks"]
    manifest = json.loads(console.served[-1])["manifest"]
    checks = {name: text for name, (_, text) in result["checks"].items()}
    assert f"Ed25519 signature by {manifest['key_id']} is valid" in checks["signature"]
    assert f"{manifest['count']} events, every hash and link holds, no seq missing" in checks["events"]
    assert manifest["count"] > 50  # the seeded history: a real export, not a toy


@pytest.mark.parametrize("case", TAMPERING, ids=lambda c: c.name)
def test_a_tampered_export_is_never_verified_and_the_first_failure_is_named(console, case):
    result = console.verify(edit=case.edit)
    lines = console.served
    assert result["state"] == "failed" and result["class"] == "fail", result
    assert result["text"].startswith("Verification FAILED: ") and "Verified" not in result["text"]
    assert re.search(rf"\bline {case.line(lines)}\b", result["text"]), result["text"]
    assert case.says(lines) in result["text"], result["text"]
    failed = {name for name, (status, _) in result["checks"].items() if status == "fail"}
    if case.says(lines) == "signature":
        assert "signature" in failed and "events" not in failed, result["checks"]
    elif case.says(lines).startswith("manifest"):
        assert result["checks"]["signature"][0] == "ok" and failed == {"manifest"}, result["checks"]
    else:
        assert "events" in failed, result["checks"]


def test_a_forged_count_fails_both_the_signature_and_the_manifest_check(console):
    forged = next(c for c in TAMPERING if c.name == "forged manifest count")
    result = console.verify(edit=forged.edit)
    signature, manifest = result["checks"]["signature"], result["checks"]["manifest"]
    assert signature[0] == "fail" and "does NOT verify" in signature[1]
    assert manifest[0] == "fail" and "manifest count is" in manifest[1]


def test_hashes_are_recomputed_over_canonical_json_as_python_writes_it(console, key):
    """Escapes, astral characters, code point key order, floats, big integers: all verify."""
    lines = build([TRICKY, {"purpose": "ads"}, {**TRICKY, "purpose": "analytics"}], key)
    result = console.verify(lines=lines)
    assert result["state"] == "verified", result
    one_changed = build([TRICKY, {"purpose": "ads"}], key)
    one_changed[0] = one_changed[0].replace(b'"big":1152921504606846977', b'"big":1152921504606846976')
    result = console.verify(lines=one_changed)
    assert result["state"] == "failed", result
    assert "line 1: event seq 1 does not match its hash" in result["text"], result


def test_gaps_are_allowed_only_in_a_filtered_export(console, key):
    filtered = console.verify(lines=build([{"n": 1}, {"n": 2}, {"n": 3}], key, seqs=[2, 5, 9],
                                          filters={"subject": "ps_x"}))
    assert filtered["state"] == "verified", filtered
    assert "a filtered export" in filtered["checks"]["events"][1]
    unfiltered = console.verify(lines=build([{"n": 1}, {"n": 2}, {"n": 3}], key, seqs=[1, 2, 5]))
    assert unfiltered["state"] == "failed"
    assert "line 3: seq 5 follows seq 2: seq 3 to 4 are missing" in unfiltered["text"], unfiltered


def test_without_webcrypto_ed25519_the_signature_is_not_checked_and_nothing_is_verified(browser, server,  # noqa: F811
                                                                                         dpo, key):
    console = signed_in(browser, server, dpo, key, NO_ED25519)
    try:
        result = console.verify()
        assert result["state"] == "unchecked" and result["class"] == "warn", result
        assert result["text"].startswith(
            "NOT verified: signature not checked: this browser cannot verify Ed25519"), result
        assert "Verified" not in result["text"]
        assert result["checks"]["signature"][0] == "unchecked"
        assert all(result["checks"][name][0] == "ok" for name in ("events", "manifest", "sha256"))
        broken = next(c for c in TAMPERING if c.name == "deleted line")  # a failure still wins
        result = console.verify(edit=broken.edit)
        assert result["state"] == "failed" and "seq 3 is missing" in result["text"]
    finally:
        console.page.context.close()


def test_without_webcrypto_at_all_nothing_is_checked_and_nothing_is_verified(browser, server, dpo, key):  # noqa: F811
    console = signed_in(browser, server, dpo, key, NO_WEBCRYPTO)
    try:
        result = console.verify()
        assert result["state"] == "unchecked", result
        assert result["text"].startswith("NOT verified: nothing checked: this page has no WebCrypto")
    finally:
        console.page.context.close()
