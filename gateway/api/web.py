"""The browser side: the banner SDK, the demo shop, the DPO console and the console's data.

- `GET /sdk/consent.js`: the dependency-free banner script (gateway/static/sdk/consent.js).
- `GET /demo`, `POST /demo/hero`, `POST /demo/profile`: a small demo shop that uses the SDK
  (demo only: GATEWAY_DEMO, off in production; acts only on `demo-` subject ids; its property
  comes from `flask --app gateway demo setup`, never from a request).
- `GET /console`: the DPO console, a static page whose script signs in with client
  credentials and keeps the token in memory.
- `GET /v1/reports/consent-rates`, `GET /v1/audit/recent`: what the console charts and lists.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, jsonify, render_template, request, send_from_directory
from marshmallow import RAISE, Schema, fields, validate

from ..core.errors import FieldError, InvalidRequest, NotFound
from ..core.locale import negotiate
from ..services import console, demo
from .auth import gateway, requires
from .parsing import json_body, path_subject
from .schemas import Locale

bp = Blueprint("web", __name__)
STATIC = Path(__file__).resolve().parents[1] / "static"
SDK_MAX_AGE = 3600  # an hour: new versions reach visitors the same day
LANGUAGES = ("en", "de", "nb")
TYPE_NAME = re.compile(r"[a-z][a-z0-9_.]{0,63}")


# -- the SDK ---------------------------------------------------------------------------------


@bp.get("/sdk/consent.js")
def sdk():
    response = send_from_directory(STATIC / "sdk", "consent.js", mimetype="application/javascript",
                                   max_age=SDK_MAX_AGE, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- the demo shop (demo only) ---------------------------------------------------------------


def _demo_on() -> None:
    if not demo.enabled(gateway()):
        raise NotFound("the demo is switched off (GATEWAY_DEMO)")


class DemoHeroIn(Schema):
    class Meta:
        unknown = RAISE

    subject_id = fields.String(required=True, validate=validate.Regexp(
        demo.SUBJECT, error="a demo subject id: 'demo-' and 1 to 80 letters, digits or ._:-"))
    locale = Locale(load_default=None, allow_none=True)


class DemoProfileIn(Schema):
    class Meta:
        unknown = RAISE

    subject_id = fields.String(required=True, validate=validate.Regexp(
        demo.SUBJECT, error="a demo subject id: 'demo-' and 1 to 80 letters, digits or ._:-"))
    browsing_categories = fields.List(
        fields.String(validate=validate.Regexp(demo.CATEGORY, error="a category such as outdoor")),
        required=True, allow_none=True, validate=validate.Length(max=10))


def _page_language() -> str:
    return negotiate(LANGUAGES, request.args.get("lang"), request.accept_languages)


@bp.get("/demo")
def demo_page():
    """The demo page with the key of the property `demo setup` made. Nothing in the request
    (its Host header least of all) creates a property or goes into the page's URLs."""
    _demo_on()
    response = render_template("demo.html", lang=_page_language(), property_key=demo.page_key(gateway()))
    return response, 200, {"Cache-Control": "no-store"}


@bp.post("/demo/hero")
def demo_hero():
    _demo_on()
    body = json_body(DemoHeroIn())
    return jsonify(demo.hero(gateway(), body["subject_id"], body["locale"]))


@bp.post("/demo/profile")
def demo_profile():
    _demo_on()
    body = json_body(DemoProfileIn())
    categories = body["browsing_categories"]
    return jsonify(demo.set_interests(gateway(), body["subject_id"],
                                      list(dict.fromkeys(categories)) if categories else None))


# -- the DPO console -------------------------------------------------------------------------


@bp.get("/console")
def console_page():
    """A page that handles a DPO's client secret: no framing, no foreign scripts, no caching
    (the headers, its Content-Security-Policy among them, are set in api/__init__.py)."""
    return render_template("console.html"), 200, {"Cache-Control": "no-store"}


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}",
                             errors=[FieldError(name, f"a whole number from {low} to {high}")])
    return value


@bp.get("/v1/reports/consent-rates")
@requires("audit:read")
def consent_rates():
    days = _int_arg("days", 30, 1, console.MAX_DAYS)
    response = jsonify(console.consent_rates(gateway(), days=days))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/v1/audit/recent")
@requires("audit:read")
def recent_audit():
    limit = _int_arg("limit", 50, 1, console.MAX_RECENT)
    types = [t.strip() for value in request.args.getlist("type") for t in value.split(",") if t.strip()]
    bad = [FieldError("type", f"{t[:70]!r} is not an event type") for t in types
           if not TYPE_NAME.fullmatch(t)]
    subject_id = request.args.get("subject_id") or None
    if subject_id is not None:
        path_subject(subject_id)
    if bad:
        raise InvalidRequest("'type' names event types such as consent.recorded", errors=bad[:5])
    response = jsonify(console.recent_events(gateway(), limit=limit, types=types, subject_id=subject_id))
    response.headers["Cache-Control"] = "no-store"
    return response
