"""kagg.urls: is this a URL, a URL fit to show (credentials redacted), userinfo as a header."""

from __future__ import annotations

import base64

import pytest

from kagg.urls import is_credential_param, is_url, redact_url, split_userinfo


@pytest.mark.parametrize("text,expected", [
    ("http://x/", True), ("HTTPS://x", True), ("ftp://x", False), ("nb.ipynb", False), ("", False),
])
def test_is_url(text, expected):
    assert is_url(text) is expected
    assert is_url(None) is False


@pytest.mark.parametrize("url,shown", [
    # userinfo: the password goes, the user name stays
    ("http://alice:s3cret@127.0.0.1:8080/", "http://alice:***@127.0.0.1:8080/"),
    ("https://alice:p%40ss@host/fn?x=1", "https://alice:***@host/fn?x=1"),
    ("http://alice:p@ss@host/", "http://alice:***@host/"),  # a raw "@" in the password
    ("http://alice:@host/", "http://alice:***@host/"),
    # a userinfo alone is taken to be a token
    ("https://ghp_abcdef@github.com/x", "https://***@github.com/x"),
    # query parameters named like credentials
    ("http://h/?token=abc&x=1", "http://h/?token=***&x=1"),
    ("http://h/p?x=1&sig=s1&key=k&code=c&password=p&secret=q&api_key=a&access_token=t",
     "http://h/p?x=1&sig=***&key=***&code=***&password=***&secret=***&api_key=***&access_token=***"),
    ("http://h/?API-Key=abc&Token=X", "http://h/?API-Key=***&Token=***"),
    ("http://h/?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F&X-Amz-Date=1",
     "http://h/?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Date=1"),
    ("http://h/?aws_session_token=abc&subscription-key=k", "http://h/?aws_session_token=***&subscription-key=***"),
    ("http://h/?keyword=a&monkey=b&token=", "http://h/?keyword=a&monkey=b&token="),  # near misses, empty
    ("http://h/cb#access_token=abc&state=1", "http://h/cb#access_token=***&state=1"),  # OAuth fragments
    # nothing to hide: unchanged, byte for byte
    ("http://127.0.0.1:57455/", "http://127.0.0.1:57455/"),
    ("http://h/a%20b?q=a+b&x=%2F#frag", "http://h/a%20b?q=a+b&x=%2F#frag"),
    ("http://[::1]:80/?token=t", "http://[::1]:80/?token=***"),
    ("http://[bad/?token=t", "http://[bad/?token=***"),  # urlsplit refuses it; still redacted
    ("hello", "hello"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown
    assert redact_url(shown) == shown  # idempotent


def test_redact_url_takes_anything():
    assert redact_url(None) is None
    assert redact_url("ftp://u:pw@h/") == "ftp://u:***@h/"


@pytest.mark.parametrize("name,expected", [
    ("token", True), ("TOKEN", True), ("api-key", True), ("client_secret", True), ("db_password", True),
    ("x", False), ("keys", False), ("tokenizer", False), ("code_page", False),
])
def test_is_credential_param(name, expected):
    assert is_credential_param(name) is expected


def test_split_userinfo_gives_a_basic_auth_header():
    url, headers = split_userinfo("http://alice:p%40ss%3Aword@127.0.0.1:8080/fn?x=1")
    assert url == "http://127.0.0.1:8080/fn?x=1"
    assert base64.b64decode(headers["Authorization"].removeprefix("Basic ")) == b"alice:p@ss:word"
    url, headers = split_userinfo("http://tok@h/")
    assert url == "http://h/" and base64.b64decode(headers["Authorization"][6:]) == b"tok:"
    assert split_userinfo("http://h/?token=x") == ("http://h/?token=x", {})
