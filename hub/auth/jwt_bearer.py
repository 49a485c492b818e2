"""JWT bearer tokens (PyJWT): HS256 with --jwt-secret / --jwt-secret-file, RS256 and ES256 with
--jwt-public-key (a PEM file that may hold several keys: any of them may sign, for rotation overlap).

Rules (protocol-notes/auth.md): the algorithm must be one the configured key allows (so `alg: none`,
and an HS256 token signed with a public key's text, are refused); `exp` and `sub` are required; a
token is refused at or after `exp` (no leeway) and before `nbf` - 30 s; `iss` and `aud` are checked
when --jwt-issuer / --jwt-audience are given, not otherwise. Scopes come from `scope` (space-separated,
OAuth) or `scp` (an array, or a space-separated string as Azure AD sends it); scopes that are not the
hub's (`openid`, `profile`, ...) are ignored, and a token left with none of the hub's is refused.
Every refusal is the same to the caller: not let in.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .principal import Principal
from .scopes import Grant, Scope, ScopeError

log = logging.getLogger("hub.auth")

NBF_LEEWAY = 30.0  # seconds a clock ahead of ours may be, for nbf (and iat) only
#: Verified tokens remembered, so a client sending the same JWT on every request is verified once.
#: Bound: when full it is emptied and refills (a verification is ~50 µs); emptied on every key reload.
VERIFIED_BOUND = 10_000

_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class JwtConfigError(ValueError):
    """A key or secret that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class JwtKeys:
    secret: bytes | None = None
    public_keys: tuple[tuple[str, Any], ...] = ()  # (algorithm, key)
    issuer: str | None = None
    audience: str | None = None

    @property
    def configured(self) -> bool:
        return self.secret is not None or bool(self.public_keys)


def load_secret_file(path: str) -> bytes:
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise JwtConfigError(f"{path}: cannot be read: {exc}") from None
    if not secret:
        raise JwtConfigError(f"{path}: the JWT secret file is empty")
    return secret


def load_public_keys(path: str) -> tuple[tuple[str, Any], ...]:
    """Every public key (or certificate) in a PEM file, with the one algorithm each may sign with."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise JwtConfigError(f"{path}: cannot be read: {exc}") from None
    keys = []
    for number, block in enumerate(_PEM.finditer(data), start=1):
        kind = block.group(1).decode()
        try:
            if kind == "CERTIFICATE":
                key = x509.load_pem_x509_certificate(block.group(0)).public_key()
            elif kind in ("PUBLIC KEY", "RSA PUBLIC KEY"):
                key = load_pem_public_key(block.group(0))
            else:
                raise JwtConfigError(f"{path}: PEM block {number} is a {kind}, not a PUBLIC KEY or CERTIFICATE")
        except ValueError as exc:
            if isinstance(exc, JwtConfigError):
                raise
            raise JwtConfigError(f"{path}: PEM block {number} ({kind}) does not load: {exc}") from None
        if isinstance(key, rsa.RSAPublicKey):
            keys.append(("RS256", key))
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            keys.append(("ES256", key))
        else:
            raise JwtConfigError(f"{path}: PEM block {number} is not an RSA or P-256 key (RS256 and ES256 only)")
    if not keys:
        raise JwtConfigError(f"{path}: no PEM public key in it")
    return tuple(keys)


@dataclass(slots=True)
class _Verified:
    name: str
    grant: Grant
    expires_at: float


class JwtVerifier:
    """Verifies bearer JWTs against the current keys (`replace` swaps them, e.g. on a reload) and is
    the grant source of the principals it makes: their grant is the token's, until it expires or a
    key reload makes it unverifiable."""

    def __init__(self, keys: JwtKeys):
        self.keys = keys
        self._verified: dict[str, _Verified] = {}

    def __len__(self) -> int:
        """How many verified tokens are remembered (at most VERIFIED_BOUND)."""
        return len(self._verified)

    def replace(self, keys: JwtKeys) -> None:
        self.keys = keys
        self._verified.clear()

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("ey")

    def principal(self, token: str) -> Principal | None:
        verified = self._check(token)
        if verified is None:
            return None
        return Principal(verified.name, token, self, expires_at=verified.expires_at)

    def grant_for(self, key: str) -> Grant | None:
        verified = self._check(key)
        return None if verified is None else verified.grant

    def _check(self, token: str) -> _Verified | None:
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token)
            if verified is None:
                return None
            if len(self._verified) >= VERIFIED_BOUND:
                self._verified.clear()
            self._verified[token] = verified
        if time.time() >= verified.expires_at:
            return None
        return verified

    def _verify(self, token: str) -> _Verified | None:
        keys = self.keys
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            return None
        if algorithm == "HS256" and keys.secret is not None:
            candidates: list[Any] = [keys.secret]
        else:
            candidates = [key for alg, key in keys.public_keys if alg == algorithm]
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    issuer=keys.issuer,
                    audience=keys.audience,
                    leeway=NBF_LEEWAY,
                    options={
                        "require": ["exp", "sub"],
                        "verify_exp": False,  # checked below, with no leeway
                        "verify_aud": keys.audience is not None,
                        "verify_iss": keys.issuer is not None,
                    },
                )
            except jwt.PyJWTError:
                continue
            return _claims(claims)
        return None


def _claims(claims: dict[str, Any]) -> _Verified | None:
    exp, sub = claims.get("exp"), claims.get("sub")
    if type(exp) not in (int, float) or type(sub) is not str or not sub:
        return None
    grant = grant_of_claims(claims)
    if grant is None:
        return None
    return _Verified(f"jwt:{sub}", grant, float(exp))


def grant_of_claims(claims: dict[str, Any]) -> Grant | None:
    """The hub's scopes in `scope` or `scp`; None when there are none."""
    texts: list[str] = []
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            texts += value.split()
        elif isinstance(value, list):
            texts += [v for v in value if isinstance(v, str)]
    scopes = []
    for text in texts:
        try:
            scopes.append(Scope.parse(text))
        except ScopeError:
            continue  # another service's scope
    return Grant(scopes) if scopes else None
