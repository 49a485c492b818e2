"""Event Hubs' SharedAccessSignature, without I/O: parse the Authorization value, say what was signed.

    Authorization: SharedAccessSignature sr=<url-encoded uri>&sig=<url-encoded base64>&se=<unix expiry>&skn=<key name>

sig = base64(HMAC-SHA256(key, sr + "\n" + se)) with sr exactly as it appears (already URL-encoded:
every Azure SDK sample encodes the uri once and uses that text both to sign and in the header).
Here the key is one of the hub's tokens, so a sender swaps its Event Hubs key for a hub token and
changes nothing else. Which token signed is found by TokenAuth.user_for_signature; this module only
parses and checks the expiry and the resource. The key name (skn) is not checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

SCHEME = "SharedAccessSignature"


class SasError(ValueError):
    """Why an Authorization value is not a usable SharedAccessSignature (safe to show: no secret)."""


@dataclass(frozen=True, slots=True)
class SharedAccessSignature:
    resource: str  # sr, as sent
    signature: bytes
    expiry: int
    key_name: str | None = None

    def signed_messages(self) -> list[bytes]:
        """What the signature may be over: sr as sent, and sr URL-encoded once in case the sender
        put it in the header unencoded."""
        candidates = [self.resource, quote_plus(unquote(self.resource))]
        return [f"{sr}\n{self.expiry}".encode() for sr in dict.fromkeys(candidates)]

    def resource_path(self) -> str:
        """The path part of sr, decoded, lower-cased, without a trailing slash: "" for a namespace."""
        uri = unquote_plus(self.resource).strip()
        if "://" in uri:
            uri = uri.split("://", 1)[1]
        _, slash, path = uri.partition("/")
        return ("/" + path if slash else "").rstrip("/").lower()

    def covers(self, request_path: str) -> bool:
        """Whether sr names this request's entity or one of its parents (Event Hubs' rule)."""
        scope = self.resource_path()
        path = request_path.rstrip("/").lower()
        return path == scope or path.startswith(scope + "/")


def parse(value: str, now: float | None = None) -> SharedAccessSignature:
    """Parse an Authorization value (with its scheme word); SasError says what is wrong."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != SCHEME.lower():
        raise SasError(f"expected the {SCHEME} scheme")
    fields: dict[str, str] = {}
    for part in rest.strip().split("&"):
        key, eq, item = part.partition("=")
        if eq:
            fields[key.strip().lower()] = item.strip()
    missing = [k for k in ("sr", "sig", "se") if not fields.get(k)]
    if missing:
        raise SasError(f"{SCHEME} lacks {', '.join(missing)} (sr=<uri>&sig=<signature>&se=<expiry>&skn=<key name>)")
    try:
        signature = base64.b64decode(unquote(fields["sig"]), validate=True)
    except (binascii.Error, ValueError):
        raise SasError(f"{SCHEME} sig is not URL-encoded base64") from None
    if not fields["se"].isdigit():
        raise SasError(f"{SCHEME} se must be a Unix time in seconds, got {fields['se']!r}")
    expiry = int(fields["se"])
    if expiry <= (time.time() if now is None else now):
        raise SasError(f"{SCHEME} expired at {expiry} (Unix seconds); make a new one")
    return SharedAccessSignature(fields["sr"], signature, expiry, fields.get("skn"))


def sign(resource_uri: str, key: str, key_name: str, expiry: int) -> str:
    """The Authorization value an Azure SDK sample makes for `resource_uri` (e.g.
    "https://ns.servicebus.windows.net/myhub") and `key` (here: a hub token)."""
    sr = quote_plus(resource_uri)
    digest = hmac.new(key.encode(), f"{sr}\n{expiry}".encode(), hashlib.sha256).digest()
    sig = quote(base64.b64encode(digest).decode())  # as the samples do: "/" stays, "+" and "=" are encoded
    return f"{SCHEME} sr={sr}&sig={sig}&se={expiry}&skn={key_name}"
