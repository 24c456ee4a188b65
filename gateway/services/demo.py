"""The demo shop at /demo: its banner property, its hero decision, its visitor profile.

Demo only: on in development and off in production (GATEWAY_DEMO; the gateway refuses to
start in production with it on). It can only ever touch subjects whose id starts with
`demo-` (the demo page makes such ids), so an enabled demo can neither read nor change the
data of real visitors.

No request ever creates a property. `flask --app gateway demo setup` (run by `make run`)
creates the demo's banner property for the origins in GATEWAY_DEMO_ORIGINS and keeps its
key in `instance/demo_property_key`, because the database holds keys only hashed. The page
only reads that key; without a set-up demo it is a 404 that says how to set it up.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from ..core.actor import Actor
from ..core.errors import FieldError, InvalidRequest, NotFound, Unauthenticated
from ..security.secrets import write_secret_file
from . import decisions, profiles, properties
from .context import Gateway

NAME = "Demo shop"
KEY_FILE = "demo_property_key"
PLACEMENT = "homepage_hero"
PURPOSE = "personalization"
SUBJECT = re.compile(r"^demo-[A-Za-z0-9._:-]{1,80}$")
CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
ACTOR = Actor(kind="client", id="demo", scopes=frozenset({"decision:write", "profile:write"}),
              purposes=frozenset({PURPOSE}))
_lock = threading.Lock()


def enabled(gw: Gateway) -> bool:
    """GATEWAY_DEMO: on by default in development, always off in production."""
    return gw.settings.demo


def origins(gw: Gateway) -> list[str]:
    """The demo's origins (GATEWAY_DEMO_ORIGINS), normalized; a bad entry is a clear error."""
    found, errors = [], []
    for i, origin in enumerate(gw.settings.demo_origins):
        try:
            found.append(properties.normalize_origin(origin))
        except ValueError as exc:
            errors.append(FieldError(f"GATEWAY_DEMO_ORIGINS[{i}]", f"{origin!r}: {exc}"))
    if errors or not found:
        raise InvalidRequest("GATEWAY_DEMO_ORIGINS must list the demo's origins, such as "
                             "http://127.0.0.1:8000", errors=errors)
    return list(dict.fromkeys(found))


def _key_path(gw: Gateway) -> Path:
    return Path(gw.settings.instance_dir) / KEY_FILE


def _read_key(path: Path) -> str | None:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None


def _property_of(gw: Gateway, key: str | None) -> dict[str, Any] | None:
    """The active property behind `key`, or None (no key, revoked, another database)."""
    if key is None:
        return None
    try:
        actor = properties.authenticate(gw, key, None)
    except Unauthenticated:
        return None
    return next((p for p in properties.list_properties(gw) if p["property_id"] == actor.id), None)


def setup(gw: Gateway) -> dict[str, Any]:
    """Create the demo property for GATEWAY_DEMO_ORIGINS unless the kept key already names an
    active one with exactly those origins: `{property_id, origins, key_file, created}`.
    The command line's `demo setup`; never called by a request."""
    if not enabled(gw):
        raise NotFound("the demo is switched off (GATEWAY_DEMO)")
    wanted = origins(gw)
    path = _key_path(gw)
    with _lock:
        prop = _property_of(gw, _read_key(path))
        if prop is not None and set(prop["origins"]) == set(wanted):
            return {"property_id": prop["property_id"], "origins": prop["origins"],
                    "key_file": str(path), "created": False}
        created = properties.create_property(gw, NAME, wanted)
        write_secret_file(path, created["property_key"] + "\n", replace=True)
    return {"property_id": created["property_id"], "origins": created["origins"],
            "key_file": str(path), "created": True}


def page_key(gw: Gateway) -> str:
    """The key the demo page carries: read, never created (see `setup`)."""
    key = _read_key(_key_path(gw))
    if key is None or _property_of(gw, key) is None:
        raise NotFound("the demo is not set up: run 'flask --app gateway demo setup' "
                       "(make run does)")
    return key


def hero(gw: Gateway, subject_id: str, locale: str | None) -> dict[str, Any]:
    """The homepage hero for a demo visitor: a real decision, stored and explainable."""
    return decisions.decide(gw, ACTOR, subject_id=subject_id, placement=PLACEMENT, locale=locale,
                            context={"page": "demo"})


def set_interests(gw: Gateway, subject_id: str, categories: list[str] | None) -> dict[str, Any]:
    """The demo's stand-in for a shop's browsing history: `browsing_categories`."""
    return profiles.update_profile(gw, ACTOR, subject_id, {"browsing_categories": categories})
