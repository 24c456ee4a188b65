"""openapi.yaml: a valid OpenAPI 3.1 document that describes exactly the app's routes.

Every response of the `client` fixture is checked against the spec (tests/contract.py);
the requests at the end exercise each documented status once, and the validator is
itself tested on made-up responses so that it cannot pass vacuously.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from contract import SPEC_PATH, SpecValidator, ValidatingClient, load_spec, spec_validator
from openapi_spec_validator import validate

from gateway.services import health

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
TC_STRING = "CQuIxQAQuIxQAEsACBENCWFgAIwAAAHAAAYgAtwAgAQABbAAAAAA.IBAQAwAQABbAEAAA.cYAAAAAAAAAA"


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in spec["paths"].items() for m in item
            if m in HTTP_METHODS}


def app_operations(app) -> dict[tuple[str, str], str]:
    """(METHOD, /path/{param}) -> endpoint, for every route but static files."""
    out = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out[(method, path)] = rule.endpoint
    return out


# -- the document ----------------------------------------------------------------------------


def test_spec_is_valid_openapi_3_1():
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_every_route_is_documented_and_every_operation_exists(app):
    spec = load_spec()
    routes = set(app_operations(app))
    documented = spec_operations(spec)
    assert routes - documented == set(), "routes missing from openapi.yaml"
    assert documented - routes == set(), "operations in openapi.yaml that the app does not have"


def test_auth_of_every_route_is_documented(app):
    """`requires(scope, property_ok=...)` on a view matches the operation's security."""
    spec = load_spec()
    for (method, path), endpoint in app_operations(app).items():
        operation = spec["paths"][path][method.lower()]
        view = app.view_functions[endpoint]
        schemes = {name for requirement in operation.get("security", [{}]) for name in requirement}
        scope = getattr(view, "required_scope", None)
        if not hasattr(view, "property_ok"):
            assert operation.get("security") == [], f"{method} {path} is public"
            continue
        assert ("propertyKey" in schemes) == view.property_ok, f"{method} {path}"
        assert "bearerAuth" in schemes, f"{method} {path}"
        if scope:
            assert f"scope `{scope}`" in " ".join(operation["description"].split()), (
                f"{method} {path}"
            )
        assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def test_error_responses_are_problem_json():
    spec = load_spec()
    validator = SpecValidator(spec)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400 or status == "503":
                    continue
                response, _ = validator._resolve(response, "")
                assert list(response["content"]) == ["application/problem+json"], (
                    f"{method.upper()} {path} {status}"
                )


def test_served_spec_is_the_file(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data() == SPEC_PATH.read_bytes()
    assert yaml.safe_load(response.get_data()) == load_spec()


# -- the validator itself --------------------------------------------------------------------


PROBLEM_BODY = json.dumps({"type": "/problems/x", "title": "X", "status": 422, "detail": "d"}).encode()


def test_validator_matches_templates_with_slashes_in_ids():
    validator = spec_validator()
    assert validator.match("/v1/subjects/a/b/c/consents") == "/v1/subjects/{subject_id}/consents"
    assert validator.match("/v1/subjects//consents") != "/v1/subjects/{subject_id}/consents"
    assert validator.match("/v1/consents/x") is None


@pytest.mark.parametrize(
    ("method", "path", "status", "content_type", "body", "message"),
    [
        ("GET", "/v1/nothing", 200, "application/json", b"{}", "no path"),
        ("PUT", "/v1/consents", 200, "application/json", b"{}", "no PUT"),
        ("POST", "/v1/consents", 418, "application/problem+json", PROBLEM_BODY, "not documented"),
        ("POST", "/v1/consents", 422, "text/html", b"<p>", "not declared"),
        ("POST", "/v1/consents", 422, "application/problem+json", b"{}", "required property"),
        ("POST", "/v1/consents", 201, "application/json", b"{\"receipt_id\": 1}", "does not match"),
        ("GET", "/healthz", 200, "application/json", b"{\"status\": \"fine\"}", "is not one of"),
        ("GET", "/healthz", 200, "application/json", b"not json", "not JSON"),
        ("GET", "/v1/nothing", 404, "text/html", b"<p>", "expected application/problem+json"),
    ],
)
def test_validator_rejects(method, path, status, content_type, body, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        spec_validator().validate(method, path, status, content_type, body)


def test_validator_accepts_routing_problems_and_nullable_fields():
    validator = spec_validator()
    validator.validate("GET", "/v1/nothing", 404, "application/problem+json", PROBLEM_BODY)
    validator.validate("PUT", "/v1/consents", 405, "application/problem+json", PROBLEM_BODY)
    validator.validate("GET", "/readyz", 503, "application/json",
                       b'{"status": "not_ready", "checks": {"database": "unreachable", '
                       b'"migrations": "unknown", "policy": "1+abc"}, "new": 1}')


def test_validator_checks_formats():
    state = {
        "subject_id": "s", "policy_version": "1", "evaluated_at": "yesterday",
        "purposes": [], "consent_mode": {k: "denied" for k in (
            "ad_storage", "ad_user_data", "ad_personalization", "analytics_storage",
            "functionality_storage", "personalization_storage", "security_storage")},
    }
    with pytest.raises(AssertionError, match="date-time"):
        spec_validator().validate("GET", "/v1/subjects/s/consents", 200, "application/json",
                                  json.dumps(state).encode())


# -- every documented status through the validating client -----------------------------------


def consent(client, headers, **body):
    body.setdefault("subject_id", "dev-3f9a")
    return client.post("/v1/consents", json=body, headers=headers)


def test_public_endpoints(client):
    assert client.get("/v1/policy?locale=de-DE").status_code == 200
    assert client.get("/v1/policy", headers={"Origin": "https://elsewhere.example"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.head("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_201_receipt_and_200_state_with_history(client, banner):
    served = client.post("/v1/notices/served", headers=banner,
                         json={"subject_id": "dev/3f9a", "purposes": ["personalization", "ads"],
                               "locale": "de", "source": {"url": "https://shop.example/"}})
    assert served.status_code == 201
    notice_id = served.get_json()["notice_id"]
    first = consent(client, banner, subject_id="dev/3f9a", notice_id=notice_id, locale="de",
                    purposes={"personalization": "granted", "analytics": "denied"},
                    source={"url": "https://shop.example/", "banner": "main"})
    assert first.status_code == 201, first.get_json()
    gpc = client.post("/v1/consents", json={"subject_id": "dev/3f9a", "tc_string": TC_STRING},
                      headers={**banner, "Sec-GPC": "1"})
    assert gpc.status_code == 201, gpc.get_json()
    assert gpc.get_json()["tcf"]["publisher_tc"] is not None
    state = client.get("/v1/subjects/dev/3f9a/consents?history=true", headers=banner)
    assert state.status_code == 200
    assert [e["status"] for e in state.get_json()["history"]][:2] == ["granted", "denied"]
    withdrawn = client.delete("/v1/subjects/dev%2F3f9a/consents", headers=banner)
    assert withdrawn.status_code == 200
    assert client.get("/v1/subjects/unknown/consents", headers=banner).status_code == 200


def test_idempotent_replay_and_409(client, banner):
    headers = {**banner, "Idempotency-Key": "retry-1"}
    first = consent(client, headers, purposes={"ads": "granted"})
    again = consent(client, headers, purposes={"ads": "granted"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    conflict = consent(client, headers, purposes={"ads": "denied"})
    assert conflict.status_code == 409


def test_400_body_that_is_not_json(client, banner):
    response = client.post("/v1/consents", data="{not json", headers=banner,
                           content_type="application/json")
    assert response.status_code == 400


def test_415_for_a_body_that_is_not_sent_as_json(client, banner):
    response = client.post("/v1/notices/served", data="subject_id=x", headers=banner,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.get_json()["errors"][0]["field"] == "Content-Type"


def test_401_without_or_with_a_bad_key(client, banner):
    assert consent(client, {}, purposes={"ads": "granted"}).status_code == 401
    bad = {"X-Property-Key": "pk_nope"}
    assert client.get("/v1/subjects/x/consents", headers=bad).status_code == 401
    assert client.delete("/v1/subjects/x/consents", headers=bad).status_code == 401


def test_403_for_an_origin_the_property_does_not_allow(client, banner):
    headers = {**banner, "Origin": "https://evil.example"}
    assert consent(client, headers, purposes={"ads": "granted"}).status_code == 403
    assert client.get("/v1/subjects/x/consents", headers=headers).status_code == 403


def test_413_for_a_huge_body(client, banner):
    body = json.dumps({"subject_id": "x", "source": {"pad": "x" * (65 * 1024)}})
    response = client.post("/v1/consents", data=body, headers=banner,
                           content_type="application/json")
    assert response.status_code == 413


def test_422_for_rule_breaks(client, banner):
    unknown = consent(client, banner, purposes={"newsletter": "granted"})
    assert unknown.status_code == 422
    assert consent(client, banner, purposes={"service": "denied"}).status_code == 422
    assert consent(client, banner, purposes={"ads": "granted"}, extra=1).status_code == 422
    bad_tcf = consent(client, banner, tc_string="CQuIxQAQuIxQAEsACBENCWFoAP_gAAAAAAYgF5wA4AAgAGAA")
    assert bad_tcf.status_code == 422
    assert bad_tcf.get_json()["code"]
    assert client.post("/v1/notices/served", json={"subject_id": "x", "purposes": ["nope"],
                                                   "locale": "en"},
                       headers=banner).status_code == 422
    assert client.get("/v1/subjects/x/consents?history=maybe", headers=banner).status_code == 422
    long_id = "x" * 257
    assert client.delete(f"/v1/subjects/{long_id}/consents", headers=banner).status_code == 422


def test_routing_errors_are_problems(client):
    assert client.get("/v1/nothing").status_code == 404
    assert client.put("/v1/consents").status_code == 405


def test_503_when_not_ready(client, monkeypatch):
    monkeypatch.setattr(health.migrate, "at_head", lambda engine: False)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "not_ready"


def test_client_fixture_validates_every_response(app):
    app.add_url_rule("/v1/undocumented", "undocumented", lambda: {"hello": "world"})
    app.test_client_class = ValidatingClient
    with pytest.raises(AssertionError, match="no path of openapi.yaml"):
        app.test_client().get("/v1/undocumented")
