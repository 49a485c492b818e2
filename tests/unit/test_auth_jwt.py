"""JWT bearer tokens (hub/auth/jwt_bearer.py), minted here with PyJWT as an identity provider would."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hub.auth.authenticator import AuthConfig, AuthError, Authenticator
from hub.auth import jwt_bearer
from hub.auth.jwt_bearer import NBF_LEEWAY
from hub.auth.scopes import Action

SECRET = "s" * 64
READ, WRITE = Action.READ, Action.WRITE


def claims(**more) -> dict:
    return {"sub": "device-9", "exp": int(time.time()) + 300, "scope": "write:cars read:cars", **more}


def public_pem(private) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def keys_file(tmp_path: Path, rsa_key, ec_key) -> Path:
    path = tmp_path / "keys.pem"
    path.write_bytes(public_pem(rsa_key) + public_pem(ec_key))
    return path


def hs256(**config) -> Authenticator:
    return Authenticator(AuthConfig(jwt_secret=SECRET, **config))


def test_an_hs256_token_lets_its_subject_in_with_its_scopes() -> None:
    principal = hs256().principal_for(jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert principal is not None and principal.name == "jwt:device-9"
    assert principal.may(WRITE, "cars") and principal.may(READ, "cars") and not principal.may(WRITE, "boats")
    assert principal.expires_at is not None and not principal.expired


def test_rs256_and_es256_with_any_key_of_the_file(keys_file: Path, rsa_key, ec_key) -> None:
    auth = Authenticator(AuthConfig(jwt_public_key=str(keys_file)))
    assert auth.principal_for(jwt.encode(claims(), rsa_key, algorithm="RS256")) is not None
    assert auth.principal_for(jwt.encode(claims(), ec_key, algorithm="ES256")) is not None
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert auth.principal_for(jwt.encode(claims(), other, algorithm="RS256")) is None


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert hs256().principal_for(unsigned) is None
    forged = unsigned.rsplit(".", 1)[0] + ".c2ln"  # a "signature" on an alg:none token
    assert hs256().principal_for(forged) is None


def test_an_algorithm_the_key_does_not_allow_is_refused(keys_file: Path, rsa_key, ec_key) -> None:
    only_keys = Authenticator(AuthConfig(jwt_public_key=str(keys_file)))
    assert only_keys.principal_for(jwt.encode(claims(), SECRET, algorithm="HS256")) is None  # no secret configured
    assert only_keys.principal_for(jwt.encode(claims(), rsa_key, algorithm="RS384")) is None
    assert only_keys.principal_for(jwt.encode(claims(), rsa_key, algorithm="PS256")) is None
    only_secret = hs256()
    assert only_secret.principal_for(jwt.encode(claims(), rsa_key, algorithm="RS256")) is None
    assert only_secret.principal_for(jwt.encode(claims(), SECRET, algorithm="HS512")) is None


def hs256_signed_with(key: bytes, payload: dict) -> str:
    """An HS256 token whose HMAC key is `key` (PyJWT refuses to make one with a PEM key: do it by hand)."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def test_an_hs256_token_signed_with_the_public_keys_text_is_refused(keys_file: Path) -> None:
    """The classic algorithm confusion: the attacker knows the public key and uses it as an HMAC secret."""
    pem = keys_file.read_bytes()
    first_key = pem[: pem.index(b"-----END PUBLIC KEY-----") + len(b"-----END PUBLIC KEY-----\n")]
    for auth in (
        Authenticator(AuthConfig(jwt_public_key=str(keys_file))),
        Authenticator(AuthConfig(jwt_public_key=str(keys_file), jwt_secret=SECRET)),
    ):
        for key in (pem, first_key, first_key.strip()):
            assert auth.principal_for(hs256_signed_with(key, claims())) is None
    # the hand-made token is right: signed with the real secret it is accepted
    assert hs256().principal_for(hs256_signed_with(SECRET.encode(), claims())) is not None


def test_exp_and_sub_are_required() -> None:
    auth = hs256()
    no_exp = claims()
    del no_exp["exp"]
    no_sub = claims()
    del no_sub["sub"]
    for payload in (no_exp, no_sub, claims(sub=""), claims(sub=17), claims(exp="tomorrow")):
        assert auth.principal_for(jwt.encode(payload, SECRET, algorithm="HS256")) is None, payload


def test_refused_at_or_after_exp_with_no_leeway() -> None:
    auth = hs256()
    now = int(time.time())
    assert auth.principal_for(jwt.encode(claims(exp=now), SECRET, algorithm="HS256")) is None
    assert auth.principal_for(jwt.encode(claims(exp=now - 5), SECRET, algorithm="HS256")) is None
    assert auth.principal_for(jwt.encode(claims(exp=now + 5), SECRET, algorithm="HS256")) is not None


def test_nbf_has_thirty_seconds_of_leeway() -> None:
    auth = hs256()
    now = time.time()
    assert auth.principal_for(jwt.encode(claims(nbf=int(now + NBF_LEEWAY - 5)), SECRET, algorithm="HS256")) is not None
    assert auth.principal_for(jwt.encode(claims(nbf=int(now + NBF_LEEWAY + 5)), SECRET, algorithm="HS256")) is None


def test_issuer_and_audience_are_required_and_checked_only_when_configured() -> None:
    strict = hs256(jwt_issuer="https://idp.example", jwt_audience="writer-hub")
    lax = hs256()
    good = claims(iss="https://idp.example", aud="writer-hub")
    for payload, strict_ok in (
        (good, True),
        (claims(iss="https://idp.example", aud=["other", "writer-hub"]), True),
        (claims(iss="https://evil.example", aud="writer-hub"), False),
        (claims(iss="https://idp.example", aud="other"), False),
        (claims(aud="writer-hub"), False),  # no iss
        (claims(iss="https://idp.example"), False),  # no aud
    ):
        token = jwt.encode(payload, SECRET, algorithm="HS256")
        assert (strict.principal_for(token) is not None) is strict_ok, payload
        assert lax.principal_for(token) is not None, payload  # not configured: not checked


@pytest.mark.parametrize(
    "scope_claims, writes_cars",
    [
        ({"scope": "write:cars openid profile"}, True),  # OAuth: space-separated; foreign scopes ignored
        ({"scp": ["write:cars", "User.Read"]}, True),  # an array
        ({"scp": "write:cars access_as_user"}, True),  # Azure AD: a space-separated string
        ({"scope": "read:cars"}, False),
    ],
)
def test_scopes_come_from_scope_or_scp(scope_claims: dict, writes_cars: bool) -> None:
    payload = {"sub": "d", "exp": int(time.time()) + 60, **scope_claims}
    principal = hs256().principal_for(jwt.encode(payload, SECRET, algorithm="HS256"))
    assert principal is not None and principal.may(WRITE, "cars") is writes_cars


@pytest.mark.parametrize("scope_claims", [{}, {"scope": ""}, {"scope": "openid profile"}, {"scp": []}, {"scope": 7}])
def test_a_jwt_without_the_hubs_scopes_is_refused(scope_claims: dict) -> None:
    payload = {"sub": "d", "exp": int(time.time()) + 60, **scope_claims}
    assert hs256().principal_for(jwt.encode(payload, SECRET, algorithm="HS256")) is None


def test_plain_tokens_and_jwts_side_by_side(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("plain-token name=dash read:*\n")
    auth = Authenticator(AuthConfig(token_file=str(path), jwt_secret=SECRET))
    assert auth.principal_for("plain-token").name == "token:dash"
    assert auth.principal_for(jwt.encode(claims(), SECRET, algorithm="HS256")).name == "jwt:device-9"
    assert auth.principal_for("garbage") is None and auth.principal_for("ey.a.b") is None


def test_a_principal_loses_its_grant_when_its_jwt_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    principal = hs256().principal_for(jwt.encode(claims(exp=int(now) + 60), SECRET, algorithm="HS256"))
    assert principal is not None and principal.may(WRITE, "cars") and not principal.expired
    monkeypatch.setattr(time, "time", lambda: now + 61)  # the clock passes exp while the principal is held
    assert principal.grant is None and not principal.may(WRITE, "cars")
    assert principal.expired and not principal.revoked  # expired, which is not the same as revoked


def test_a_certificate_in_the_key_file_gives_its_public_key(tmp_path: Path, rsa_key) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    start = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rsa_key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=1))
        .sign(rsa_key, hashes.SHA256())
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    auth = Authenticator(AuthConfig(jwt_public_key=str(path)))
    assert auth.principal_for(jwt.encode(claims(), rsa_key, algorithm="RS256")) is not None


def test_unusable_keys_stop_the_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    private = tmp_path / "private.pem"
    private.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    edwards = tmp_path / "ed.pem"
    edwards.write_bytes(public_pem(ed25519.Ed25519PrivateKey.generate()))
    blank_secret = tmp_path / "secret"
    blank_secret.write_text("\n")
    for config, why in (
        (AuthConfig(jwt_secret=SECRET, jwt_secret_file=str(blank_secret)), "not both"),
        (AuthConfig(jwt_public_key=str(empty)), "no PEM public key"),
        (AuthConfig(jwt_public_key=str(private)), "not a PUBLIC KEY or CERTIFICATE"),
        (AuthConfig(jwt_public_key=str(edwards)), "RS256 and ES256 only"),
        (AuthConfig(jwt_public_key=str(tmp_path / "missing.pem")), "cannot be read"),
        (AuthConfig(jwt_secret_file=str(blank_secret)), "is empty"),
    ):
        with pytest.raises(AuthError, match=why):
            Authenticator(config)


def test_verified_tokens_are_remembered_up_to_the_bound_then_forgotten_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_bearer, "VERIFIED_BOUND", 3)
    auth = hs256()
    tokens = [jwt.encode(claims(sub=f"d{n}"), SECRET, algorithm="HS256") for n in range(7)]
    for n, token in enumerate(tokens):
        assert auth.principal_for(token).name == f"jwt:d{n}"
        assert 1 <= len(auth.jwt) <= 3
    assert all(auth.principal_for(t) is not None for t in tokens)  # forgotten ones verify again
    assert auth.principal_for(jwt.encode(claims(), "x" * 64, algorithm="HS256")) is None
    assert len(auth.jwt) <= 3  # refused tokens are not remembered
