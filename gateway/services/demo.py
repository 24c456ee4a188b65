"""The demo shop at /demo: its banner property, its hero decision, its visitor profile.

Demo only. It is on unless GATEWAY_DEMO=false, and it can only ever touch
subjects whose id starts with `demo-` (the demo page makes such ids), so an
enabled demo can neither read nor change the data of real visitors.

The demo property's key is kept in `instance/demo_property_key` because the
database holds keys only hashed; a key file that is missing, unreadable or names
a revoked property is replaced by a new "Demo shop" property.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.actor import Actor
from ..core.errors import Forbidden, Unauthenticated
from . import decisions, profiles, properties
from .context import Gateway

NAME = "Demo shop"
KEY_FILE = "demo_property_key"
PLACEMENT = "homepage_hero"
PURPOSE = "personalization"
SUBJECT = re.compile(r"^demo-[A-Za-z0-9._:-]{1,80}$")
CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
ACTOR = Actor(kind="client", id="demo", scopes=frozenset({"decision:write", "profile:write"}),
              purposes=frozenset({PURPOSE}))
_lock = threading.Lock()


def enabled(gw: Gateway) -> bool:
    """GATEWAY_DEMO=false (or 0, no, off) switches the demo routes off."""
    value = gw.settings.environ.get("GATEWAY_DEMO", "true")
    return str(value).strip().lower() not in ("0", "false", "no", "off")


def _origins_for(origin: str) -> list[str]:
    """The origin, and on a loopback host its loopback aliases with the same port."""
    origin = properties.normalize_origin(origin)
    parts = urlsplit(origin)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    if host not in LOOPBACK:
        return [origin]
    port = f":{parts.port}" if parts.port else ""
    return [origin] + [f"{parts.scheme}://{h}{port}" for h in LOOPBACK if h != host]


def _key_path(gw: Gateway) -> Path:
    return Path(gw.settings.instance_dir) / KEY_FILE


def _read_key(path: Path) -> str | None:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    os.replace(tmp, path)


def ensure_property(gw: Gateway, origin: str) -> dict[str, Any]:
    """The demo property for `origin`, created on first use: `{property_id, property_key,
    origins, created}`. Calling it again returns the same property."""
    path = _key_path(gw)
    with _lock:
        key = _read_key(path)
        previous: list[str] = []
        if key is not None:
            try:
                actor = properties.authenticate(gw, key, origin)
            except Unauthenticated:
                pass  # revoked, or from another database: make a new one
            except Forbidden:
                found = properties.authenticate(gw, key, None)
                previous = next((p["origins"] for p in properties.list_properties(gw)
                                 if p["property_id"] == found.id), [])
            else:
                prop = next(p for p in properties.list_properties(gw) if p["property_id"] == actor.id)
                return {"property_id": prop["property_id"], "property_key": key,
                        "origins": prop["origins"], "created": False}
        wanted = list(dict.fromkeys(_origins_for(origin) + previous))
        created = properties.create_property(gw, NAME, wanted)
        _write_key(path, created["property_key"])
    return {"property_id": created["property_id"], "property_key": created["property_key"],
            "origins": created["origins"], "created": True}


def hero(gw: Gateway, subject_id: str, locale: str | None) -> dict[str, Any]:
    """The homepage hero for a demo visitor: a real decision, stored and explainable."""
    return decisions.decide(gw, ACTOR, subject_id=subject_id, placement=PLACEMENT, locale=locale,
                            context={"page": "demo"})


def set_interests(gw: Gateway, subject_id: str, categories: list[str] | None) -> dict[str, Any]:
    """The demo's stand-in for a shop's browsing history: `browsing_categories`."""
    return profiles.update_profile(gw, ACTOR, subject_id, {"browsing_categories": categories})
