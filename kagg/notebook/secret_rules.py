"""The rules that recognise a credential in a piece of text (used by :mod:`kagg.notebook.secrets`).

Two kinds of rules:

* *formats* — values whose shape alone identifies them (``AKIA…``, ``ghp_…``,
  ``-----BEGIN PRIVATE KEY-----``…), found anywhere in the text;
* *assignments* — a value given to a name that means a credential
  (``password = "…"``, ``"api_key": "…"``, ``export TOKEN=…``), judged by the
  value: placeholders, reads of the environment, f-strings and low-entropy
  words are not credentials.

Pure standard library (``re``, ``math``), so ``kagg --help`` stays fast.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Callable, Iterator, NamedTuple, Optional

#: Rule id -> what the user is told the value looks like. Ids are stable (used in --json output).
RULES: dict[str, str] = {
    "aws-access-key-id": "AWS access key id",
    "aws-secret-access-key": "AWS secret access key",
    "gcp-service-account-key": "GCP service-account private key",
    "private-key": "private key block",
    "gcp-api-key": "Google API key",
    "google-oauth-client-secret": "Google OAuth client secret",
    "azure-storage-connection-string": "Azure storage connection string key",
    "azure-shared-access-key": "Azure connection string shared access key",
    "azure-sas-token": "Azure SAS token signature",
    "kaggle-key": "Kaggle API key",
    "kaggle-api-token": "Kaggle API token",
    "github-token": "GitHub token",
    "gitlab-token": "GitLab personal access token",
    "slack-token": "Slack token",
    "slack-webhook": "Slack webhook URL",
    "openai-api-key": "OpenAI API key",
    "anthropic-api-key": "Anthropic API key",
    "huggingface-token": "Hugging Face token",
    "stripe-secret-key": "Stripe live secret key",
    "sendgrid-api-key": "SendGrid API key",
    "pypi-token": "PyPI upload token",
    "npm-token": "npm access token",
    "jwt": "JSON Web Token",
    "bearer-token": "Authorization header credential",
    "url-credentials": "password in a URL",
    "password-assignment": "hard-coded password",
    "secret-assignment": "hard-coded secret, token or API key",
}

#: Cell magics whose body is Python; the body of any other ``%%magic`` is shell/config text.
_PY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy",
                             "cython", "memit", "mprun", "skip", "tensorflow"})


# -- results ---------------------------------------------------------------------------------------

class TextFinding(NamedTuple):
    """One finding in a piece of text: 1-based line, rule id, description, redacted value."""

    line: int
    rule: str
    description: str
    redacted: str


# -- helpers ---------------------------------------------------------------------------------------

def entropy(value: str) -> float:
    """Shannon entropy in bits per character: random keys score high, words and padding low."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def redact(value: str) -> str:
    """Keep the first 4 characters of a long value (enough to recognise ``AKIA``/``ghp_``), mask the rest.

    Values shorter than 16 characters are masked entirely: 4 characters of an
    8-character password give too much away. At most 32 ``*`` are shown so a
    private key does not fill the terminal.
    """
    if len(value) < 16:
        return "*" * len(value)
    return value[:4] + "*" * min(len(value) - 4, 32)


_PLACEHOLDER = re.compile(
    r"example|your|xxx|\*\*\*|\.\.\.|…|changeme|change_me|change-me|placeholder|dummy|redacted|replace|"
    r"insert|enter[_\- ]|todo|fixme|fake|mock|sample|_here|-here|[<>{}\[\]]|\$\(|%\(|%s\b",
    re.I)


def _is_placeholder(value: str) -> bool:
    """True for documentation stand-ins: ``<your-key>``, ``YOUR_API_KEY``, ``xxx``, ``${TOKEN}``, AWS's EXAMPLE keys."""
    return bool(_PLACEHOLDER.search(value)) or value.startswith("$")


def _random_enough(value: str, minimum: float = 3.0) -> bool:
    """A fixed-format token's random part must not be padding like ``xxxxxxxx``."""
    return entropy(value) >= minimum and not _is_placeholder(value)


def _letters_and_digits(value: str) -> bool:
    """Random tokens mix both; words, version strings and numbers do not."""
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _looks_like_password(value: str) -> bool:
    """Whether a value given to a credential name is plausibly a real one.

    Words (``"Bob"``, ``"sk-local"``, ``"GOOGLE_API_KEY"``), short codes (``"1234"``),
    prose (spaces), paths and URLs are not; mixed letters with digits or symbols
    (``"hunter2xyz"``), or long random-looking strings, are.
    """
    if len(value) < 6 or len(value) > 512 or _is_placeholder(value):
        return False
    if any(c.isspace() for c in value):
        return False
    if "://" in value or value.startswith(("/", "./", "../", "~/")) or re.match(r"^[A-Za-z]:\\", value):
        return False
    if re.search(r"\.(?:json|ya?ml|txt|csv|pem|key|p12|ini|cfg|env|py|ipynb)$", value, re.I):
        return False
    if re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]+", value):  # the *name* of a variable or secret
        return False
    bits = entropy(value)
    if bits < 2.5:
        return False
    letters = any(c.isalpha() for c in value)
    if letters and any(c.isdigit() for c in value):
        return True
    if letters and any(not c.isalnum() and c not in "-_." for c in value):
        return len(value) >= 10 and bits >= 3.0  # "P@ss!word" needs some length: "token:" is no password
    return len(value) >= 20 and bits >= 3.5 and not value.islower() and not value.isupper()


@lru_cache(maxsize=1024)
def _words(name: str) -> tuple[str, ...]:
    """``self.apiKey`` -> ``["api", "key"]``; ``DB_PASSWORD2`` -> ``["db", "password"]``."""
    last = re.split(r"[.\[\]]", name.strip("'\"[]"))
    name = next((part for part in reversed(last) if part), "")
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    words = [re.sub(r"\d+$", "", w).lower() for w in re.split(r"[_\-\s]+", name)]
    return tuple(w for w in words if w)


_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "passcode"})
_SECRET_WORDS = frozenset({"secret", "token", "apikey", "apitoken", "secretkey", "accesskey", "privatekey",
                           "authtoken", "accesstoken"})
#: Words before ``key`` that make it a lookup key, not a credential (``sort_key``, ``s3_key``).
_KEY_NOT_SECRET = frozenset({
    "sort", "dict", "primary", "foreign", "cache", "lookup", "partition", "hash", "row", "col", "column",
    "join", "group", "map", "object", "s3", "blob", "file", "bucket", "index", "match", "unique",
    "composite", "hot", "keyboard", "music", "shortcut", "public", "pub", "cluster", "shard", "routing",
    "idempotency", "dedup", "message", "translation", "state", "metric", "feature", "target", "label",
    "id", "random", "rng", "prng", "seed", "dataset", "table", "record", "item", "config", "setting",
    "field", "json", "attr", "param", "event", "header", "data", "cursor", "next", "prev", "last",
    "first", "start", "end", "sub", "model", "layer", "query", "value", "result", "output", "input",
    "name", "score", "split", "fold", "sample", "image", "cv", "kv", "redis",
})
#: Words before ``token`` that make it a tokenizer's special token, not a credential.
_TOKEN_NOT_SECRET = frozenset({
    "pad", "eos", "bos", "unk", "sep", "mask", "cls", "start", "end", "stop", "special", "first", "last",
    "next", "prev", "new", "input", "output", "word", "sub", "split", "bpe", "null", "blank", "space",
    "image", "img", "audio", "video", "sentinel", "eot", "think", "vocab", "text", "default", "decoder",
    "encoder", "separator", "prefix", "suffix", "answer", "question", "chat", "role",
})
_PASS_NOT_SECRET = frozenset({"first", "second", "one", "two", "single", "multi", "forward", "backward",
                              "render", "by", "bi", "high", "low", "band", "all"})


def _credential_kind(name: str) -> Optional[str]:
    """``"password"``/``"secret"`` when ``name`` means a credential, else None.

    Only the last word decides: ``password_length``, ``token_count``,
    ``gemini_api_secret_name`` and ``secret_santa`` are not credentials.
    """
    words = _words(name)
    if not words:
        return None
    last, before = words[-1], words[:-1]
    prev = before[-1] if before else ""
    if last in _PASSWORD_WORDS:
        if last == "pass" and prev in _PASS_NOT_SECRET:
            return None
        return "password"
    if last in _SECRET_WORDS:
        if last == "token" and prev in _TOKEN_NOT_SECRET:
            return None
        return "secret"
    if last == "key" and before and prev not in _KEY_NOT_SECRET:
        return "secret"
    if last in {"credential", "credentials", "auth"} and before and prev in {"api", "basic", "db", "proxy"}:
        return "secret"
    return None


# -- format rules (a value's shape identifies it) --------------------------------------------------

class _Hit(NamedTuple):
    start: int  # offset of the value in the scanned text
    end: int
    rule: str
    value: str


_B = r"(?<![A-Za-z0-9_\-])"  # the value does not continue a longer word on the left
_E = r"(?![A-Za-z0-9_\-])"   # ... nor on the right

#: (rule, regex, check of the captured value). Group "v" is the secret; the whole match otherwise.
_FORMATS: list[tuple[str, re.Pattern[str], Callable[[str], bool]]] = [
    ("aws-access-key-id", re.compile(r"(?<![A-Z0-9])(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Z0-9])"),
     lambda v: _random_enough(v[4:], 2.5)),
    ("anthropic-api-key", re.compile(_B + r"(?P<v>sk-ant-[A-Za-z0-9_\-]{20,})"), lambda v: _random_enough(v[7:])),
    ("openai-api-key", re.compile(_B + r"(?P<v>sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,})" + _E),
     lambda v: _random_enough(v, 3.5) and _letters_and_digits(v[3:])),
    ("gcp-api-key", re.compile(_B + r"(?P<v>AIza[0-9A-Za-z_\-]{35})" + _E), lambda v: _random_enough(v[4:])),
    ("google-oauth-client-secret", re.compile(_B + r"(?P<v>GOCSPX-[A-Za-z0-9_\-]{28})" + _E),
     lambda v: _random_enough(v[7:])),
    ("github-token",
     re.compile(_B + r"(?P<v>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{50,})" + _E),
     lambda v: _random_enough(v[4:])),
    ("gitlab-token", re.compile(_B + r"(?P<v>glpat-[A-Za-z0-9_\-]{20,})" + _E), lambda v: _random_enough(v[6:])),
    ("slack-token", re.compile(_B + r"(?P<v>xox[abposre]-[0-9]{6,}-[A-Za-z0-9\-]{8,})" + _E),
     lambda v: _random_enough(v[5:])),
    ("slack-webhook", re.compile(r"hooks\.slack\.com/services/(?P<v>T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,})"),
     lambda v: _random_enough(v.rsplit("/", 1)[-1])),
    ("huggingface-token", re.compile(_B + r"(?P<v>hf_[A-Za-z0-9]{30,40})" + _E),
     lambda v: _random_enough(v[3:], 3.5) and not v[3:].islower() and not v[3:].isupper()),
    ("stripe-secret-key", re.compile(_B + r"(?P<v>(?:sk|rk)_live_[A-Za-z0-9]{20,})" + _E),
     lambda v: _random_enough(v[8:])),
    ("sendgrid-api-key", re.compile(_B + r"(?P<v>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})" + _E),
     lambda v: _random_enough(v[3:])),
    ("pypi-token", re.compile(_B + r"(?P<v>pypi-AgE[A-Za-z0-9_\-]{50,})" + _E), lambda v: _random_enough(v[8:])),
    ("npm-token", re.compile(_B + r"(?P<v>npm_[A-Za-z0-9]{36})" + _E), lambda v: _random_enough(v[4:])),
    ("kaggle-api-token", re.compile(_B + r"(?P<v>KGAT_[A-Za-z0-9]{20,})" + _E), lambda v: _random_enough(v[5:])),
    ("jwt", re.compile(_B + r"(?P<v>eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})" + _E),
     lambda v: not _is_placeholder(v)),
    ("azure-storage-connection-string",
     re.compile(r"(?i:AccountKey)=(?P<v>[A-Za-z0-9+/]{40,}={0,2})"), lambda v: _random_enough(v, 3.5)),
    ("azure-shared-access-key",
     re.compile(r"(?i:SharedAccessKey)=(?P<v>[A-Za-z0-9+/]{30,}={0,2})"), lambda v: _random_enough(v, 3.5)),
    ("bearer-token", re.compile(r"\b(?:Bearer|BEARER|bearer|Basic|BASIC)\s+(?P<v>[A-Za-z0-9._~+/\-]{16,}=*)"),
     lambda v: _random_enough(v, 3.0) and _letters_and_digits(v)),
]

_PEM = re.compile(r"-----BEGIN (?P<kind>(?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----")
_PEM_BODY = re.compile(r"(?:(?<=\\n)|(?<=\\r)|(?<=[\s\"',\[]))(?P<v>[A-Za-z0-9+/]{40,}={0,2})")
_SAS_SIG = re.compile(r"(?<![A-Za-z0-9_])sig=(?P<v>(?:[A-Za-z0-9+/]|%2[BbFf])(?:[A-Za-z0-9+/=]|%[0-9A-Fa-f]{2}){29,})")
_URL_CREDS = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://(?P<user>[^\s:@/'\"]+):(?P<v>[^\s@/'\"]+)@[A-Za-z0-9.\-\[]")


#: Lower-case literals one of which each format's match must contain: most text has none, and
#: ``in`` is much faster than a regex pass (matters for megabyte outputs).
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "aws-access-key-id": ("akia", "asia", "abia", "acca"),
    "anthropic-api-key": ("sk-ant-",),
    "openai-api-key": ("sk-",),
    "gcp-api-key": ("aiza",),
    "google-oauth-client-secret": ("gocspx-",),
    "github-token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab-token": ("glpat-",),
    "slack-token": ("xox",),
    "slack-webhook": ("hooks.slack.com",),
    "huggingface-token": ("hf_",),
    "stripe-secret-key": ("_live_",),
    "sendgrid-api-key": ("sg.",),
    "pypi-token": ("pypi-age",),
    "npm-token": ("npm_",),
    "kaggle-api-token": ("kgat_",),
    "jwt": ("eyj",),
    "azure-storage-connection-string": ("accountkey=",),
    "azure-shared-access-key": ("sharedaccesskey=",),
    "bearer-token": ("bearer", "basic"),
}


def _format_hits(text: str) -> Iterator[_Hit]:
    """Values whose shape alone says what they are, anywhere in ``text``."""
    low = text.lower()
    has = low.__contains__
    for rule, pattern, check in _FORMATS:
        if not any(map(has, _TRIGGERS[rule])):  # map: no generator per rule and text (a batch scans hundreds)
            continue
        for m in pattern.finditer(text):
            if check(m.group("v")):
                yield _Hit(m.start("v"), m.end("v"), rule, m.group("v"))
    for m in _PEM.finditer(text) if "-----begin" in low else ():
        # The header alone is documentation; a key has a base64 body right after it.
        body = _PEM_BODY.search(text, m.end(), m.end() + 400)
        if body is None or _is_placeholder(body.group("v")) or entropy(body.group("v")) < 4.0:
            continue
        before = text[max(0, m.start() - 40):m.start()]
        rule = "gcp-service-account-key" if "private_key" in before else "private-key"
        yield _Hit(m.start(), body.end("v"), rule, body.group("v"))  # reported at the header's line
    for m in _SAS_SIG.finditer(text) if "sig=" in low else ():
        # A SAS signature sits in a query string that also names the service version (sv=).
        lo = max(text.rfind(c, 0, m.start()) for c in " \t\n\"'`") + 1
        his = [i for i in (text.find(c, m.end()) for c in " \t\n\"'`") if i >= 0]
        query = text[lo:min(his) if his else len(text)]
        value = m.group("v")
        if re.search(r"(?<![A-Za-z0-9_])sv=\d{4}-\d\d-\d\d", query) and _random_enough(value, 3.5):
            yield _Hit(m.start("v"), m.end("v"), "azure-sas-token", value)
    for m in _URL_CREDS.finditer(text) if "://" in text else ():
        if _looks_like_password(m.group("v")):
            yield _Hit(m.start("v"), m.end("v"), "url-credentials", m.group("v"))


# -- assignment rules (a name says it is a credential; the value must look like one) ---------------

_STR = r"(?P<prefix>[rRbBuU]{0,2})(?P<q>[\"'])(?P<v>(?:\\.|(?!(?P=q))[^\\\n])*)(?P=q)"
#: ``name = "v"``, ``name: str = "v"``, ``name="v"``, ``"name": "v"``, ``x["NAME"] = "v"``, ``name: "v"`` (YAML).
#: Each pattern is a lookahead so that matches may overlap: ``code = "x = 1\npassword = 'a1b2c3d4'"``
#: must not hide the inner assignment inside the outer string.
_ASSIGN_QUOTED = re.compile(
    r"(?=(?:(?<![\w.\-\\])|(?<=\\[nrt]))(?P<name>[A-Za-z_][\w.\-]*)[\"']?\]?"
    r"(?:\s*:\s*[A-Za-z_][\w\[\]., |]{0,60}?\s*=|\s*(?:=|:|=>))\s*" + _STR + ")")
#: ``os.environ.setdefault("NAME", "v")``, ``os.getenv("NAME", "v")``: a hard-coded fallback is still hard-coded.
_ASSIGN_CALL = re.compile(
    r"(?=\b(?:setdefault|putenv|setenv|getenv|get)\(\s*[\"'](?P<name>[\w.\-]+)[\"']\s*,\s*" + _STR + ")")
#: Shell, .env, INI and YAML text: ``export NAME=v``, ``--password=v``, ``NAME: v``, ``echo 'NAME=v'``.
_ASSIGN_BARE = re.compile(
    r"(?=(?:(?<![^\s;&|(,'\"`])|(?<=\\[nrt]))-{0,2}(?P<name>[A-Za-z_][\w.\-]*)\s*[=:]\s*"
    r"(?P<v>[^\s\"'`$;&|(){}<>,\[\]\\]+)(?=$|[\s;&|,)'\"`\\]))", re.M)
#: IPython's ``%env NAME value`` / ``%set_env NAME value``.
_ENV_MAGIC = re.compile(r"^\s*%(?:env|set_env)\s+(?P<name>\w+)\s+(?P<v>[^\s=\"'$]\S*)\s*$", re.M)

#: Cheap first test: a credential name contains one of these (most assignments are not about credentials).
_NAME_HINT = re.compile(r"pass|pwd|secret|token|key|auth|cred|kaggle|aws", re.I)
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")


def _classify(name: str, value: str, text: str, pos: int) -> Optional[str]:
    """The rule a ``name = value`` pair breaks, or None."""
    if not _NAME_HINT.search(name) or _is_placeholder(value):
        return None
    words = _words(name)
    if _HEX32.fullmatch(value) and (
            "kaggle" in words or (words == ("key",) and _near(text, pos, ("username", "kaggle")))):
        return "kaggle-key"
    if (_AWS_SECRET.fullmatch(value) and ("aws" in words or "secret" in words)
            and words[-1] not in {"id", "name", "hash", "sha", "digest", "checksum"}
            and any(c.islower() for c in value) and any(c.isupper() for c in value) and entropy(value) >= 4.0):
        return "aws-secret-access-key"
    kind = _credential_kind(name)
    if kind is None or not _looks_like_password(value):
        return None
    return "password-assignment" if kind == "password" else "secret-assignment"


def _near(text: str, pos: int, needles: tuple[str, ...], lines: int = 3) -> bool:
    """Whether any needle occurs within ``lines`` lines around ``pos`` (a kaggle.json's ``username``)."""
    lo = pos
    for _ in range(lines + 1):
        lo = text.rfind("\n", 0, lo)
        if lo < 0:
            lo = 0
            break
    hi = pos
    for _ in range(lines + 1):
        hi = text.find("\n", hi + 1)
        if hi < 0:
            hi = len(text)
            break
    window = text[lo:hi].lower()
    return any(n in window for n in needles)


def _assignment_hits(text: str, bare_spans: list[tuple[int, int]]) -> Iterator[_Hit]:
    """Credential-named assignments; unquoted values only inside ``bare_spans`` (shell/config text)."""
    if not _NAME_HINT.search(text):
        return
    for pattern in (_ASSIGN_QUOTED, _ASSIGN_CALL):
        for m in pattern.finditer(text):
            if "f" in m.group("prefix").lower():
                continue
            rule = _classify(m.group("name"), m.group("v"), text, m.start("v"))
            if rule:
                yield _Hit(m.start("v"), m.end("v"), rule, m.group("v"))
    for lo, hi in bare_spans:
        chunk = text[lo:hi]
        for pattern in (_ASSIGN_BARE, _ENV_MAGIC):
            for m in pattern.finditer(chunk):
                rule = _classify(m.group("name"), m.group("v"), text, lo + m.start("v"))
                if rule:
                    yield _Hit(lo + m.start("v"), lo + m.end("v"), rule, m.group("v"))


def _bare_spans(text: str, kind: str) -> list[tuple[int, int]]:
    """Parts of ``text`` where ``NAME=value`` without quotes is data, not a Python variable reference.

    That is: outputs and raw cells entirely; the body of a non-Python cell magic
    (``%%bash``, ``%%writefile``, ``%%nuclio env``); ``%magic`` / ``!shell`` /
    ``export`` lines; and fenced code blocks in markdown.
    """
    if kind in ("raw", "output"):
        return [(0, len(text))]
    if kind == "code":
        first = text.lstrip().split("\n", 1)[0]
        m = re.match(r"%%(\w+)", first)
        if m and m.group(1) not in _PY_CELL_MAGICS:
            return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    in_fence = False
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if kind == "markdown" and stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
        elif in_fence or re.match(r"(?:[%!]|\$ |export\s|set\s)", stripped):
            spans.append((pos, pos + len(line)))
        pos += len(line)
    return spans


# -- public API ------------------------------------------------------------------------------------

def scan_text(text: str, kind: str = "code") -> list[TextFinding]:
    """Credentials in one cell's source (``kind`` = ``"code"``, ``"markdown"``, ``"raw"``) or an output (``"output"``).

    Each value is reported once, under its most specific rule (an ``sk-…`` key
    given to ``api_key`` is an OpenAI key, not a generic secret); findings come
    in text order.
    """
    if not text:
        return []
    hits = list(_format_hits(text)) + list(_assignment_hits(text, _bare_spans(text, kind)))
    kept: list[_Hit] = []  # disjoint, sorted by start
    starts: list[int] = []
    for hit in hits:  # format rules come first, so they win an overlap
        i = bisect.bisect_left(starts, hit.start)
        if (i > 0 and kept[i - 1].end > hit.start) or (i < len(kept) and kept[i].start < hit.end):
            continue
        starts.insert(i, hit.start)
        kept.insert(i, hit)
    newlines = [m.start() for m in re.finditer("\n", text)] if kept else []
    return [TextFinding(bisect.bisect_left(newlines, h.start) + 1, h.rule, RULES[h.rule], redact(h.value))
            for h in kept]
