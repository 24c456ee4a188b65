"""Checking responses against openapi.yaml (the contract), for every API test.

`SpecValidator.validate` fails with an AssertionError when a response's path,
method or status is not documented, its content type is not declared, or its
JSON body does not match the documented schema. `ValidatingClient` is a Flask
test client that runs every response through it; conftest.py makes it the
client of the `client` fixture.

Routing answers are the one exception to "everything is documented": a 404
for a path that no template matches and a 405 for a method a path does not
have cannot be described in OpenAPI, so they only have to be problem+json.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
SPEC_URI = "urn:consent-gateway:openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM = "application/problem+json"
MAX_ERRORS = 5


def load_spec() -> dict:
    """openapi.yaml of the project, parsed."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _escape(segment: str) -> str:
    """One JSON-pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def _pointer(*segments: str) -> str:
    return "".join("/" + _escape(str(s)) for s in segments)


def _template_regex(template: str) -> re.Pattern[str]:
    # `{x}` becomes `.+`: subject ids may contain `/`
    parts = re.split(r"\{[^{}/]+\}", template)
    return re.compile(".+".join(re.escape(p) for p in parts))


class SpecValidator:
    """Validates (method, path, status, content type, body) against the spec."""

    def __init__(self, spec: dict | None = None):
        self.spec = spec if spec is not None else load_spec()
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(self.spec))
        # most literal characters first: `/v1/subjects/{id}/consents` before `/v1/subjects/{id}`,
        # as Werkzeug prefers the more specific rule
        templates = sorted(self.spec.get("paths", {}),
                           key=lambda t: -len(re.sub(r"\{[^{}/]+\}", "", t)))
        self.templates = [(t, _template_regex(t)) for t in templates]
        self._validators: dict[str, Draft202012Validator] = {}

    # -- lookups ---------------------------------------------------------------------------

    def match(self, path: str) -> str | None:
        """The path template that `path` belongs to, or None."""
        return next((t for t, rx in self.templates if rx.fullmatch(path)), None)

    def _resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local `$ref`s of a response object; returns (node, its JSON pointer)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise AssertionError(f"openapi.yaml: cannot follow $ref {ref!r} at {pointer}")
            seen.add(ref)
            pointer = ref[1:]
            node = self.spec
            for segment in pointer[1:].split("/"):
                node = node[segment.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at `pointer` in the spec, with its $refs resolvable."""
        if pointer not in self._validators:
            ref = f"{SPEC_URI}#{quote(pointer, safe='/~')}"
            self._validators[pointer] = Draft202012Validator(
                {"$ref": ref},
                registry=self.registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
        return self._validators[pointer]

    # -- validation ------------------------------------------------------------------------

    def validate(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        """Raise AssertionError unless the response is documented and matches its schema."""
        method = method.lower()
        where = f"{method.upper()} {path} -> {status}"
        head = method == "head"
        template = self.match(path)
        if template is None:
            if status == 404:
                self._check_problem(where, content_type, body, head)
                return
            raise AssertionError(f"{where}: no path of openapi.yaml matches {path!r}")
        item = self.spec["paths"][template]
        op_method = "get" if head and "head" not in item else method
        operation = item.get(op_method)
        if operation is None:
            if status == 405:
                self._check_problem(where, content_type, body, head)
                return
            documented = ", ".join(m.upper() for m in METHODS if m in item)
            raise AssertionError(
                f"{where}: openapi.yaml has no {method.upper()} for {template} (only {documented})"
            )
        responses = {str(k): v for k, v in operation.get("responses", {}).items()}
        key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses),
                   None)
        if key is None:
            raise AssertionError(
                f"{where}: status {status} is not documented for {method.upper()} {template} "
                f"(documented: {', '.join(sorted(responses))}); body: {_preview(body)}"
            )
        response, pointer = self._resolve(
            responses[key], _pointer("paths", template, op_method, "responses", key)
        )
        content = response.get("content") or {}
        if not content:
            if body and not head:
                raise AssertionError(f"{where}: the spec documents no body, got {_preview(body)}")
            return
        media_type = content_type.split(";")[0].strip().lower()
        declared = self._media_key(content, media_type)
        if declared is None:
            raise AssertionError(
                f"{where}: content type {content_type!r} is not declared "
                f"(declared: {', '.join(content)}); body: {_preview(body)}"
            )
        if head or not _is_json(media_type) or "schema" not in content[declared]:
            return
        self._check_json(where, pointer + _pointer("content", declared, "schema"), body)

    def _media_key(self, content: dict, media_type: str) -> str | None:
        if media_type in content:
            return media_type
        wildcard = media_type.split("/")[0] + "/*"
        return next((k for k in (wildcard, "*/*") if k in content), None)

    def _check_problem(self, where: str, content_type: str, body: bytes, head: bool) -> None:
        media_type = content_type.split(";")[0].strip().lower()
        if media_type != PROBLEM:
            raise AssertionError(f"{where}: expected {PROBLEM}, got {content_type!r}")
        if not head:
            self._check_json(where, "/components/schemas/Problem", body)

    def _check_json(self, where: str, pointer: str, body: bytes) -> None:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise AssertionError(f"{where}: the body is not JSON ({exc}): {_preview(body)}") from None
        errors = sorted(self.validator(pointer).iter_errors(data), key=lambda e: list(e.path))
        if errors:
            lines = [f"  {e.json_path}: {e.message}" for e in errors[:MAX_ERRORS]]
            if len(errors) > MAX_ERRORS:
                lines.append(f"  ... and {len(errors) - MAX_ERRORS} more")
            raise AssertionError(
                f"{where}: the body does not match the schema at {pointer}:\n"
                + "\n".join(lines) + f"\nbody: {_preview(body)}"
            )


def _preview(body: bytes, limit: int = 500) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."


@cache
def spec_validator() -> SpecValidator:
    """One validator per process: the spec is loaded once."""
    return SpecValidator()


class ValidatingClient(FlaskClient):
    """A Flask test client that checks every response against openapi.yaml."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        if request.method == "OPTIONS" or request.path.startswith("/static"):
            return response
        media_type = (response.mimetype or "").lower()
        if request.method == "HEAD" or (response.is_streamed and not _is_json(media_type)):
            body = b""  # leave streamed exports to the test that reads them
        else:
            body = response.get_data()
        spec_validator().validate(
            request.method, request.path, response.status_code, response.content_type or "", body
        )
        return response
