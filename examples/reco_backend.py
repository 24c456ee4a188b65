#!/usr/bin/env python3
"""An example remote personalization backend for Consent Gateway.

It speaks the protocol in the README ("Decisions and explanations"):
the gateway POSTs {"decision_id", "subject_id", "placement", "purpose",
"locale", "context", "profile"} signed with `X-Gateway-Signature:
sha256=<hex>` (HMAC-SHA256 of the raw body under a shared secret); this
backend checks the signature, picks content from the permitted profile only,
and answers with the content, the attributes it used and an explanation in
English, German and Norwegian.

    RECO_BACKEND_SECRET=change-me python examples/reco_backend.py --port 9001

Start the gateway with the same RECO_BACKEND_SECRET in its environment; the
demo policy's `product_recommendations` placement points at
http://127.0.0.1:9001/decide. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 256 * 1024

CATEGORY_PICKS = {
    "outdoor": ("trail-gear", "outdoor gear", "Outdoor-Ausrüstung", "friluftsutstyr"),
    "running": ("running-shoes", "running shoes", "Laufschuhe", "løpesko"),
    "kitchen": ("cookware", "cookware", "Kochgeschirr", "kokekar"),
    "home": ("home-decor", "home decor", "Wohndeko", "interiør"),
}


def verify(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


def recommend(request: dict) -> dict:
    """Content from the permitted profile only; names every attribute it used."""
    profile = request.get("profile") or {}
    for source in ("purchase_categories", "browsing_categories"):
        for category in profile.get(source) or []:
            if category in CATEGORY_PICKS:
                content_id, en, de, nb = CATEGORY_PICKS[category]
                seen = {
                    "purchase_categories": ("you bought", "Sie gekauft haben", "du har kjøpt"),
                    "browsing_categories": ("you looked at", "Sie sich angesehen haben", "du har sett på"),
                }[source]
                return {
                    "content": {"id": content_id, "source": "reco-backend"},
                    "attributes": [source],
                    "explanation": {
                        "en": f"We recommend {en} because of the products {seen[0]}.",
                        "de": f"Wir empfehlen {de}, weil Sie sich für ähnliche Produkte interessiert haben, "
                              f"die {seen[1]}.",
                        "nb": f"Vi anbefaler {nb} på grunn av produktene {seen[2]}.",
                    },
                }
    return {
        "content": {"id": "bestsellers", "source": "reco-backend"},
        "attributes": [],
        "explanation": {
            "en": "We show our bestsellers; we did not use your data for this.",
            "de": "Wir zeigen unsere Bestseller; Ihre Daten haben wir dafür nicht genutzt.",
            "nb": "Vi viser bestselgerne våre; vi brukte ikke opplysningene dine til dette.",
        },
    }


def make_handler(secret: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "reco-backend/1"

        def do_POST(self):  # noqa: N802 (http.server's naming)
            raw_length = self.headers.get("Content-Length") or "0"
            if not (raw_length.isascii() and raw_length.isdigit()):  # negative: read(-1) waits for EOF
                return self._send(400, {"error": "bad Content-Length"})
            length = int(raw_length)
            if length > MAX_BODY:
                return self._send(413, {"error": "too large"})
            body = self.rfile.read(length)
            if not verify(secret, body, self.headers.get("X-Gateway-Signature")):
                return self._send(401, {"error": "bad signature"})
            try:
                request = json.loads(body)
            except ValueError:
                return self._send(400, {"error": "not JSON"})
            return self._send(200, recommend(request))

        def _send(self, status: int, data: dict) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format, *args):  # noqa: A002 - keep subject ids out of the console
            pass

    return Handler


def serve(host: str, port: int, secret: str) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(secret))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    secret = os.environ.get("RECO_BACKEND_SECRET")
    if not secret:
        raise SystemExit("set RECO_BACKEND_SECRET (the same value the gateway has)")
    server = serve(args.host, args.port, secret)
    print(f"reco backend on http://{args.host}:{args.port}/decide")
    server.serve_forever()


if __name__ == "__main__":
    main()
