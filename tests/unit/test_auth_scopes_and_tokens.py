"""Scopes, grants and the token file (hub/auth/scopes.py, token_file.py, tokens.py)."""

from __future__ import annotations

import secrets

import pytest

from hub.auth.authenticator import AuthConfig, AuthError, Authenticator
from hub.auth.scopes import ADMIN, Action, Grant, Scope, ScopeError
from hub.auth.token_file import TokenFileError, parse_token_lines

READ, WRITE = Action.READ, Action.WRITE


@pytest.mark.parametrize(
    "scope, topic, allowed",
    [
        ("write:cars", "cars", True),
        ("write:cars", "cars2", False),
        ("write:cars", "boats", False),
        ("write:cars-*", "cars-17", True),
        ("write:cars-*", "cars-", True),
        ("write:cars-*", "cars", False),
        ("write:*-eu", "cars-eu", True),
        ("write:*-eu", "cars-us", False),
        ("write:c*s", "cars", True),
        ("write:c*s", "cs", True),
        ("write:c*s", "carsx", False),
        ("write:*", "anything at all", True),
        ("write:a.b", "aXb", False),  # only * is special: '.' is a dot
        ("write:[ab]", "a", False),
        ("write:[ab]", "[ab]", True),
        ("write:cars:eu", "cars:eu", True),  # split at the first ':' only
    ],
)
def test_a_pattern_is_a_name_or_a_glob_where_only_star_is_special(scope: str, topic: str, allowed: bool) -> None:
    assert Grant.parse([scope]).allows(WRITE, topic) is allowed


def test_actions_neither_read_nor_write_implies_the_other_and_admin_implies_both() -> None:
    grant = Grant.parse(["write:cars", "read:boats", "admin:planes-*"])
    assert grant.allows(WRITE, "cars") and not grant.allows(READ, "cars")
    assert grant.allows(READ, "boats") and not grant.allows(WRITE, "boats")
    assert grant.allows(READ, "planes-1") and grant.allows(WRITE, "planes-1") and grant.allows(Action.ADMIN, "planes-1")
    assert not grant.allows(Action.ADMIN, "cars")
    assert not grant.admin and ADMIN.admin and Grant.parse(["admin:*"]).admin
    assert ADMIN.allows(READ, "x") and ADMIN.allows(WRITE, "y")


def test_allows_any_says_whether_some_topic_allows_the_action() -> None:
    assert Grant.parse(["read:cars"]).allows_any(READ) and not Grant.parse(["read:cars"]).allows_any(WRITE)
    assert Grant.parse(["admin:x"]).allows_any(WRITE)
    assert not Grant([]).allows_any(READ)


@pytest.mark.parametrize(
    "text, why",
    [
        ("cars", "expected <action>:<topic pattern>"),
        ("wirte:cars", "the action must be read, write or admin"),
        ("WRITE:cars", "the action must be read, write or admin"),
        ("write:", "the topic pattern is empty"),
        ("write:a/b", "no '/'"),
        ("read:a\tb", "no control characters"),
    ],
)
def test_a_malformed_scope_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ScopeError, match=why):
        Scope.parse(text)


# --- the token file ----------------------------------------------------------------------------------


def test_token_file_lines_tokens_names_scopes_comments() -> None:
    entries = parse_token_lines(
        "# a comment\n"
        "\n"
        "s3cret  name=car-17  write:cars read:cars\n"
        "0th3r\tname=car-17 write:cars   # the next token of car-17\n"
        "dashb0ard read:*\n"
        "legacy\n"
        "with=equals==  name=b64\n",
        "tokens.txt",
    )
    assert [(e.token, e.name) for e in entries] == [
        ("s3cret", "car-17"), ("0th3r", "car-17"), ("dashb0ard", None), ("legacy", None), ("with=equals==", "b64"),
    ]
    assert entries[0].grant == Grant.parse(["write:cars", "read:cars"])
    assert entries[1].grant == Grant.parse(["write:cars"])
    assert entries[3].grant is ADMIN and entries[4].grant is ADMIN  # no scopes listed: admin, as before


@pytest.mark.parametrize(
    "line, why",
    [
        ("{token} name=a name=b", "name= is given twice"),
        ("{token} name=", "a name is 1-128"),
        ("{token} name=bad/name", "a name is 1-128"),
        ("{token} wirte:cars", "field 2 is neither name=<name> nor a scope"),  # not echoed: it could be a token
        ("{token} write:", "the topic pattern is empty"),
        ("{token} car-17", "field 2 is neither name=<name> nor a scope"),
        ("name=car-17 {token}", "the token must come first"),
        ("write:cars {token}", "the token must come first"),
        ("car-17 {token}", "field 2 is neither"),  # a token in the wrong place is not echoed
    ],
)
def test_a_malformed_line_names_file_and_line_never_the_token(line: str, why: str) -> None:
    token = "tok-" + secrets.token_hex(12)
    text = "good-token name=ok\n# comment\n" + line.format(token=token) + "\n"
    with pytest.raises(TokenFileError) as caught:
        parse_token_lines(text, "/etc/hub/tokens.txt")
    message = str(caught.value)
    assert message.startswith("/etc/hub/tokens.txt line 3: ") and why in message, message
    assert token not in message


def test_the_same_token_twice_is_an_error_that_does_not_show_it() -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_token_lines("abc name=x\nother\nabc name=y\n", "f")
    assert str(caught.value) == "f line 3: the same token is already on line 1"


# --- users ---------------------------------------------------------------------------------------------


def test_users_are_named_by_the_file_or_by_a_digest_and_two_lines_with_one_name_are_one_user(tmp_path) -> None:
    path = tmp_path / "tokens"
    path.write_text("t1 name=car-17 write:cars\nt2 name=car-17 write:cars\nt3 read:*\n")
    auth = Authenticator(AuthConfig(tokens=("admin-token",), token_file=str(path)))
    one, two, three, admin = (auth.principal_for(t) for t in ("t1", "t2", "t3", "admin-token"))
    assert one.name == two.name == "token:car-17"
    assert three.name.startswith("token:") and len(three.name) == len("token:") + 8 and "t3" not in three.name
    assert admin.admin and not one.admin and one.may(WRITE, "cars") and not one.may(READ, "cars")
    assert auth.principal_for("nope") is None and "t1" not in repr(one)


def test_a_malformed_token_file_stops_the_start(tmp_path) -> None:
    path = tmp_path / "tokens"
    path.write_text("fine\nsecret-value wirte:cars\n")
    with pytest.raises(AuthError, match=r"tokens line 2: field 2 is neither name=<name> nor a scope") as caught:
        Authenticator(AuthConfig(token_file=str(path)))
    assert "secret-value" not in str(caught.value)
    with pytest.raises(AuthError, match="cannot be read"):
        Authenticator(AuthConfig(token_file=str(tmp_path / "missing")))
