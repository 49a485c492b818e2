"""hub/logs.py with plain log records: every spelling of a secret query key that the hub (Starlette)
decodes to access_token, token or id has its value redacted from uvicorn's access and WebSocket
lines; Authorization values too; and uvicorn's records of a client's mistake become one info line."""

from __future__ import annotations

import io
import logging
import logging.config
import sys
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.logs import ClientMistakes, RedactSecrets, configure_logging, redact

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access line
WEBSOCKET_FORMAT = '%s - "WebSocket %s" [accepted]'  # uvicorn's WebSocket line


def emitted(msg: str, *args: object, name: str = "uvicorn.access", level: int = logging.INFO, exc_info=None) -> str:
    """The text a record makes after the hub's filters and formatter."""
    record = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)
    for f in (ClientMistakes(), RedactSecrets()):
        if not f.filter(record):
            return ""
    return logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)


def starlette_reads(query: str) -> dict[str, str]:
    """What the hub's request.query_params.get(key) gives: the last value of each decoded key."""
    return dict(parse_qsl(query.encode("ascii").decode("latin-1"), keep_blank_values=True))


def percent(char: str, upper: bool) -> str:
    escape = quote(char, safe="")
    if escape == char:
        escape = "%" + format(ord(char), "02x")
    return escape.upper() if upper else escape.lower()


@st.composite
def spelled(draw, text: str) -> str:
    """`text` with any of its characters percent-encoded, in either case of hex digit."""
    return "".join(
        percent(c, draw(st.booleans())) if draw(st.booleans()) else c for c in text
    )


secret_values = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", min_size=12, max_size=24).map(
    lambda s: "S3" + s
)
other_pairs = st.lists(
    st.tuples(st.sampled_from(["name", "streamId", "negotiateVersion", "from", "x"]), st.text("abc123", max_size=5)),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(
    key=st.sampled_from(["access_token", "token", "id"]).flatmap(spelled),
    value=secret_values,
    value_spelling=st.booleans(),
    before=other_pairs,
    after=other_pairs,
    repeat=st.booleans(),
    line=st.sampled_from(["access", "websocket"]),
)
def test_a_secret_under_any_spelling_of_its_key_is_redacted(key, value, value_spelling, before, after, repeat, line):
    raw_value = "".join(percent(c, True) if i % 3 == 0 else c for i, c in enumerate(value)) if value_spelling else value
    pairs = [f"{k}={v}" for k, v in before] + [f"{key}={raw_value}"] + [f"{k}={v}" for k, v in after]
    if repeat:  # a repeated key: Starlette takes the last one, and both must go
        pairs.append(f"{key}={raw_value}X")
    query = "&".join(pairs)
    read = [v for k, v in starlette_reads(query).items() if k in ("access_token", "token", "id")]
    assert len(read) == 1 and read[0].startswith(value)  # what the hub takes as the secret
    path = "/hub?" + query
    text = (
        emitted(ACCESS_FORMAT, "127.0.0.1:5000", "GET", path, "1.1", 200)
        if line == "access"
        else emitted(WEBSOCKET_FORMAT, "127.0.0.1:5000", path, name="uvicorn.error")
    )
    assert value not in text and raw_value not in text, text
    for k, v in before + after:  # the rest of the line is kept
        assert f"{k}={v}" in text


@pytest.mark.parametrize(
    "query",
    [
        "access_tok%65n=S3cretValue1", "tok%65n=S3cretValue1", "%61ccess_token=S3cretValue1",
        "ACCESS_TOKEN=S3cretValue1", "access%5Ftoken=S3cretValue1", "access%5ftoken=S3cretValue1",
        "access_token=S3cretValue1&access_token=S3cretValue1", "a=1;access_token=S3cretValue1",
        "access_token+=S3cretValue1", "access_token%20=S3cretValue1", "+access_token=S3cretValue1",
        "access_token=%53%33cretValue1", "access_token=S3cret+Value1", "access_tok%2565n=S3cretValue1",
        "id=S3cretValue1", "%69d=S3cretValue1", "i%64=S3cretValue1", "token=S3cretValue1&name=cars",
        "sig=S3cretValue1", "refresh_token=S3cretValue1",
    ],
)  # fmt: skip
def test_spellings_seen_on_the_wire(query: str) -> None:
    text = emitted(ACCESS_FORMAT, "127.0.0.1:5000", "POST", "/v0/events?" + query, "1.1", 200)
    assert "S3cret" not in text and "%53%33cret" not in text, text
    assert text.count("***") >= 1


def test_free_text_and_headers() -> None:
    assert redact("GET /hub?id=abc&access_token=def HTTP/1.1") == "GET /hub?id=***&access_token=*** HTTP/1.1"
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert redact("authorization: bearer abc") == "authorization: bearer ***"
    sas = "SharedAccessSignature sr=https%3A%2F%2Fns%2Fhub&sig=S3cretSig%3D&se=1700000000&skn=key"
    assert "S3cretSig" not in redact(f"Authorization: {sas}")
    assert redact("redis://:S3cret@localhost:6379/0") == "redis://***@localhost:6379/0"
    assert redact("no secrets here? none=1") == "no secrets here? none=1"
    assert redact("/topics/t/streams/s/events/data?from=1&limit=5") == "/topics/t/streams/s/events/data?from=1&limit=5"


def test_a_jwt_is_redacted_wherever_it_appears() -> None:
    import jwt as pyjwt

    token = pyjwt.encode({"sub": "d", "exp": 2_000_000_000, "scope": "write:cars"}, "k" * 64, algorithm="HS256")
    for text in (f"GET /topics/{token}/streams HTTP/1.1", f"token was {token}, refused", f"'{token}'", f"/hub/{token}?x=1"):
        assert token not in redact(text) and token.split(".")[2] not in redact(text), text
    text = emitted(ACCESS_FORMAT, "127.0.0.1:5000", "GET", f"/topics/{token}/streams?limit=5", "1.1", 200)
    assert token not in text and "limit=5" in text, text
    assert redact("eyJhbGciOi is just a word here") == "eyJhbGciOi is just a word here"


def test_a_traceback_is_redacted_too() -> None:
    try:
        raise RuntimeError("failed on /hub?id=S3cretConnection")
    except RuntimeError:
        text = emitted("connection %s failed", "c1", name="hub", level=logging.ERROR, exc_info=sys.exc_info())
    assert "S3cretConnection" not in text and "RuntimeError" in text


def test_a_secret_split_over_arguments_is_caught_on_the_whole_line() -> None:
    text = emitted("%s?%s=%s", "/hub", "access_token", "S3cretValue1", name="hub")
    assert "S3cret" not in text


@pytest.fixture
def uvicorn_error_level():
    logger = logging.getLogger("uvicorn.error")
    before = logger.level
    yield logger.setLevel
    logger.setLevel(before)


def test_a_clients_bad_utf8_is_one_info_line(uvicorn_error_level) -> None:
    uvicorn_error_level(logging.INFO)
    try:
        b"\xff".decode()
    except UnicodeDecodeError:
        exc_info = sys.exc_info()
    text = emitted("Invalid UTF-8 sequence received from client.", name="uvicorn.error", level=logging.ERROR, exc_info=exc_info)
    assert text == "INFO uvicorn.error: client error: Invalid UTF-8 sequence received from client."
    # other errors are left as they are
    other = emitted("Exception in ASGI application\n", name="uvicorn.error", level=logging.ERROR, exc_info=exc_info)
    assert other.startswith("ERROR") and "Traceback" in other
    uvicorn_error_level(logging.WARNING)
    assert emitted("Invalid HTTP request received.", name="uvicorn.error", level=logging.WARNING) == ""


def test_the_configured_handler_applies_both(monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        logging.config.dictConfig(configure_logging("info"))
        logging.getLogger("uvicorn.access").info(ACCESS_FORMAT, "127.0.0.1:1", "GET", "/x?tok%65n=S3cretValue1", "1.1", 200)
        try:
            b"\xff".decode()
        except UnicodeDecodeError:
            logging.getLogger("uvicorn.error").exception("Invalid UTF-8 sequence received from client.")
        logging.config.dictConfig(configure_logging("warning"))
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")  # info, under warning: dropped
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "S3cret" not in lines[0] and "tok%65n=***" in lines[0]
    assert " INFO uvicorn.error: client error: Invalid UTF-8 sequence received from client." in lines[1]
