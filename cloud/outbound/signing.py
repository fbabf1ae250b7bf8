"""Webhook signatures, pure: a receiver can tell a POST came from crowdfix, unchanged and
recent.

The header is `X-Crowdfix-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC taken
with the technician's webhook secret over `<t>.<body>` (the body's exact bytes), as Stripe
signs its webhooks: the time inside the signed text keeps an old request from being replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "X-Crowdfix-Signature"
TOLERANCE_S = 300  # how old a signed request a receiver should still accept


def derive(key: bytes, technician_id: str, version: int) -> str:
    """The technician's webhook secret: derived from the deployment's key (never stored), their
    id and the secret's version (a new version on each rotation)."""
    mac = hmac.new(key, f"webhook-secret/{technician_id}/{version}".encode(), hashlib.sha256)
    return "whsec_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def sign(secret: str, body: bytes, at: int) -> str:
    """The signature header's value for this body, signed at unix time `at`."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256)
    return f"t={at},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does: the header is well formed, recent, and its HMAC matches."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        at = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, at), f"t={at},v1={fields.get('v1', '')}")
