"""The credentials scanner (kagg/secrets.py): every rule fires on a planted key, look-alikes do not.

Fake keys are assembled at run time from a seeded random generator, so this file
holds no complete key literal for a push-protection scanner to flag, and a test
never depends on a real credential.
"""

from __future__ import annotations

import base64
import json
import random
import string
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from kagg.errors import BadInput
from kagg.notebook.secrets import RULES, Finding, SecretsFound, check_notebook, redact, scan_notebook, scan_text
from tests.conftest import CORPUS, needs_corpus

UP, LO, DG = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UP + LO + DG
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
_rng = random.Random(1729)
#: Words the scanner reads as "this is a placeholder"; a random fake must not contain them by chance.
_PLACEHOLDER_WORDS = ("example", "your", "xxx", "fake", "mock", "todo", "dummy", "sample", "insert", "replace")


def rand(alphabet: str, n: int) -> str:
    """A random-looking string with letters and digits where the alphabet has both."""
    while True:
        s = "".join(_rng.choice(alphabet) for _ in range(n))
        low = s.lower()
        if any(w in low for w in _PLACEHOLDER_WORDS):
            continue
        if any(c in alphabet for c in DG) and not any(c.isdigit() for c in s):
            continue
        if any(c in alphabet for c in UP) and any(c in alphabet for c in LO) and (s.islower() or s.isupper()):
            continue
        return s


def pem(kind: str = "") -> tuple[str, str]:
    """A PEM private-key block (header, random body, footer) and its first body line."""
    label = (kind + " " if kind else "") + "PRIVATE" + " KEY"
    body = [rand(B64, 64) for _ in range(4)] + [rand(B64, 20) + "=="]
    return "\n".join(["-----BEGIN " + label + "-----", *body, "-----END " + label + "-----"]), body[0]


def nb_of(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells))


def one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [str(f) for f in findings]
    return findings[0]


# -- each rule fires on a planted credential -------------------------------------------------------

AWS_ID = "AK" + "IA" + rand(UP + DG, 16)
AWS_SECRET = rand(B64, 40)
PRIVATE_PEM, PRIVATE_BODY = pem("RSA")
SA_BODY = rand(B64, 64)
SA_JSON_LINE = ('    "private_key": "-----BEGIN ' + "PRIVATE KEY-----\\n" + SA_BODY + "\\n" + rand(B64, 64)
                + "\\n-----END " + 'PRIVATE KEY-----\\n",')
GCP_KEY = "AI" + "za" + rand(ALNUM + "_-", 35)
AZURE_ACCOUNT_KEY = rand(B64, 86) + "=="
AZURE_SB_KEY = rand(B64, 43) + "="
SAS_SIG = rand(ALNUM, 40) + "%2B" + rand(ALNUM, 3) + "%3D"
KAGGLE_HEX = rand(HEX, 32)
KGAT = "KG" + "AT_" + rand(HEX, 32)
GHP = "gh" + "p_" + rand(ALNUM, 36)
GH_PAT = "github" + "_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)
GLPAT = "gl" + "pat-" + rand(ALNUM, 20)
SLACK = "xo" + "xb-" + rand(DG, 12) + "-" + rand(DG, 13) + "-" + rand(ALNUM, 24)
SLACK_HOOK = "T" + rand(UP + DG, 10) + "/B" + rand(UP + DG, 10) + "/" + rand(ALNUM, 24)
OPENAI = "sk" + "-proj-" + rand(ALNUM + "_-", 48)
OPENAI_LEGACY = "sk" + "-" + rand(ALNUM, 48)
ANTHROPIC = "sk" + "-ant-api03-" + rand(ALNUM + "_-", 93) + "AA"
HF = "hf" + "_" + rand(UP + LO, 34)
STRIPE = "sk" + "_live_" + rand(ALNUM, 24)
SENDGRID = "SG" + "." + rand(ALNUM, 22) + "." + rand(ALNUM, 43)
PYPI = "pypi" + "-AgEIcHlwaS5vcmc" + rand(ALNUM + "_-", 60)
NPM = "np" + "m_" + rand(ALNUM, 36)
GOCSPX = "GOC" + "SPX-" + rand(ALNUM + "_-", 28)
JWT = ("ey" + "J" + base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")[3:]
       + ".ey" + "J" + rand(ALNUM, 40) + "." + rand(ALNUM + "_-", 43))
BEARER = rand(ALNUM + "._-", 40)
DB_PASSWORD = rand(ALNUM, 14)

#: (id, cell, expected rule, expected 1-based line in the cell, the secret value).
PLANTED = [
    ("aws-id", new_code_cell('import boto3\nAWS_ACCESS_KEY_ID = "' + AWS_ID + '"'), "aws-access-key-id", 2, AWS_ID),
    ("aws-id-in-call", new_code_cell("s3 = boto3.client('s3', aws_access_key_id='" + AWS_ID + "')"),
     "aws-access-key-id", 1, AWS_ID),
    ("aws-secret", new_code_cell("x = 1\n\naws_secret_access_key = '" + AWS_SECRET + "'"),
     "aws-secret-access-key", 3, AWS_SECRET),
    ("aws-credentials-file", new_code_cell("%%writefile ~/.aws/credentials\n[default]\naws_secret_access_key = "
                                           + AWS_SECRET + "\n"), "aws-secret-access-key", 3, AWS_SECRET),
    ("private-key", new_raw_cell("key material:\n" + PRIVATE_PEM), "private-key", 2, PRIVATE_BODY),
    ("gcp-service-account", new_code_cell('sa = {\n    "type": "service_account",\n' + SA_JSON_LINE + "\n}"),
     "gcp-service-account-key", 3, SA_BODY),
    ("gcp-api-key", new_code_cell('genai.configure(api_key="' + GCP_KEY + '")'), "gcp-api-key", 1, GCP_KEY),
    ("azure-conn", new_code_cell('CONN = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey='
                                 + AZURE_ACCOUNT_KEY + ';EndpointSuffix=core.windows.net"'),
     "azure-storage-connection-string", 1, AZURE_ACCOUNT_KEY),
    ("azure-servicebus", new_code_cell('conn = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName='
                                       'RootManageSharedAccessKey;SharedAccessKey=' + AZURE_SB_KEY + '"'),
     "azure-shared-access-key", 1, AZURE_SB_KEY),
    ("azure-sas", new_code_cell('url = ("https://acct.blob.core.windows.net/data/train.csv"\n'
                                '       "?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig='
                                + SAS_SIG + '")'), "azure-sas-token", 2, SAS_SIG),
    ("kaggle-json", new_code_cell('import json\ncreds = {"username": "someone",\n         "key": "' + KAGGLE_HEX
                                  + '"}\njson.dump(creds, open("kaggle.json", "w"))'), "kaggle-key", 3, KAGGLE_HEX),
    ("kaggle-var", new_code_cell('KAGGLE_KEY = "' + KAGGLE_HEX + '"'), "kaggle-key", 1, KAGGLE_HEX),
    ("kaggle-environ", new_code_cell("import os\nos.environ['KAGGLE_KEY'] = '" + KAGGLE_HEX + "'"),
     "kaggle-key", 2, KAGGLE_HEX),
    ("kaggle-echo", new_code_cell("!mkdir -p ~/.kaggle\n!echo '{\"username\":\"someone\",\"key\":\"" + KAGGLE_HEX
                                  + "\"}' > ~/.kaggle/kaggle.json"), "kaggle-key", 2, KAGGLE_HEX),
    ("kaggle-export", new_code_cell("%%bash\nexport KAGGLE_USERNAME=someone\nexport KAGGLE_KEY=" + KAGGLE_HEX),
     "kaggle-key", 3, KAGGLE_HEX),
    ("kaggle-token", new_code_cell('os.environ["KAGGLE_API_TOKEN"] = "' + KGAT + '"'), "kaggle-api-token", 1, KGAT),
    ("github", new_code_cell('g = Github("' + GHP + '")'), "github-token", 1, GHP),
    ("github-pat", new_code_cell("GITHUB_TOKEN = '" + GH_PAT + "'"), "github-token", 1, GH_PAT),
    ("gitlab", new_code_cell("gl = gitlab.Gitlab(private_token='" + GLPAT + "')"), "gitlab-token", 1, GLPAT),
    ("slack", new_code_cell('client = WebClient(token="' + SLACK + '")'), "slack-token", 1, SLACK),
    ("slack-webhook", new_code_cell('requests.post("https://hooks.slack.com/services/' + SLACK_HOOK + '", json=m)'),
     "slack-webhook", 1, SLACK_HOOK),
    ("openai", new_code_cell('client = OpenAI(api_key="' + OPENAI + '")'), "openai-api-key", 1, OPENAI),
    ("openai-legacy", new_code_cell('openai.api_key = "' + OPENAI_LEGACY + '"'), "openai-api-key", 1, OPENAI_LEGACY),
    ("anthropic", new_code_cell('ANTHROPIC_API_KEY = "' + ANTHROPIC + '"'), "anthropic-api-key", 1, ANTHROPIC),
    ("huggingface", new_code_cell('from huggingface_hub import login\nlogin("' + HF + '")'),
     "huggingface-token", 2, HF),
    ("stripe", new_code_cell('stripe.api_key = "' + STRIPE + '"'), "stripe-secret-key", 1, STRIPE),
    ("sendgrid", new_code_cell('sg = SendGridAPIClient("' + SENDGRID + '")'), "sendgrid-api-key", 1, SENDGRID),
    ("pypi", new_code_cell("!twine upload -u __token__ -p " + PYPI + " dist/*"), "pypi-token", 1, PYPI),
    ("npm", new_code_cell("!npm config set //registry.npmjs.org/:_authToken " + NPM), "npm-token", 1, NPM),
    ("google-oauth", new_code_cell('CLIENT_SECRET = "' + GOCSPX + '"'), "google-oauth-client-secret", 1, GOCSPX),
    ("jwt", new_code_cell('access_token = "' + JWT + '"'), "jwt", 1, JWT),
    ("bearer", new_code_cell('headers = {\n    "Authorization": "Bearer ' + BEARER + '",\n}'), "bearer-token", 2,
     BEARER),
    ("url-password", new_code_cell('engine = create_engine("postgresql://admin:' + DB_PASSWORD
                                   + '@db.internal:5432/app")'), "url-credentials", 1, DB_PASSWORD),
    ("password", new_code_cell('user = "admin"\npassword = "hunter2xyz"'), "password-assignment", 2, "hunter2xyz"),
    ("password-dict", new_code_cell('cfg = {"host": "db", "password": "' + DB_PASSWORD + '"}'),
     "password-assignment", 1, DB_PASSWORD),
    ("password-kwarg", new_code_cell("conn = psycopg2.connect(host='db', user='app', passwd='" + DB_PASSWORD + "')"),
     "password-assignment", 1, DB_PASSWORD),
    ("password-annotated", new_code_cell("DB_PASS: str = '" + DB_PASSWORD + "'"), "password-assignment", 1,
     DB_PASSWORD),
    ("password-env-default", new_code_cell("pw = os.getenv('DB_PASSWORD', '" + DB_PASSWORD + "')"),
     "password-assignment", 1, DB_PASSWORD),
    ("password-cli-flag", new_code_cell("!mysql --user=app --password=" + DB_PASSWORD + " -e 'select 1'"),
     "password-assignment", 1, DB_PASSWORD),
    ("nuclio-env", new_code_cell("%%nuclio env\nUSER=someone\nPASSWORD=" + DB_PASSWORD), "password-assignment", 3,
     DB_PASSWORD),
    ("secret-environ", new_code_cell('os.environ["API_KEY"] = "' + DB_PASSWORD + '"'), "secret-assignment", 1,
     DB_PASSWORD),
    ("secret-env-magic", new_code_cell("%env WANDB_API_KEY=" + rand(HEX, 40)), "secret-assignment", 1, None),
    ("secret-camel", new_code_cell('client = Client(apiKey="' + DB_PASSWORD + '")'), "secret-assignment", 1,
     DB_PASSWORD),
    ("secret-header", new_code_cell('h = {"X-API-Key": "' + DB_PASSWORD + '"}'), "secret-assignment", 1, DB_PASSWORD),
    ("client-secret", new_code_cell("client_secret = '" + DB_PASSWORD + "'"), "secret-assignment", 1, DB_PASSWORD),
    ("markdown-leak", new_markdown_cell("# Setup\n\nMy key: `" + GHP + "`"), "github-token", 3, GHP),
    ("markdown-dotenv", new_markdown_cell("Put this in `.env`:\n\n```\nHF_TOKEN=" + HF + "\nDEBUG=1\n```"),
     "huggingface-token", 4, HF),
    ("markdown-env-fence", new_markdown_cell("```bash\nexport DB_PASSWORD=" + DB_PASSWORD + "\n```"),
     "password-assignment", 2, DB_PASSWORD),
]


@pytest.mark.parametrize("cell,rule,line,value", [p[1:] for p in PLANTED], ids=[p[0] for p in PLANTED])
def test_planted_credential_is_found(cell, rule: str, line: int, value: str | None) -> None:
    nb = nb_of(new_markdown_cell("# A notebook"), new_code_cell("import os"), cell)
    f = one(scan_notebook(nb))
    assert (f.cell, f.line, f.rule, f.where) == (3, line, rule, "source")
    assert f.description == RULES[rule]
    if value is not None:
        assert f.redacted == redact(value)
        assert value not in str(f) and value not in f.redacted


def test_every_rule_has_a_planted_example() -> None:
    assert {p[2] for p in PLANTED} == set(RULES)


def test_output_findings_count_lines_within_the_output() -> None:
    cell = new_code_cell("print(open('.env').read())", outputs=[
        new_output("stream", name="stdout", text="DEBUG=1\nOPENAI_API_KEY=" + OPENAI + "\n"),
        new_output("execute_result", data={"text/plain": "{'region': 'eu', 'password': '" + DB_PASSWORD + "'}"},
                   execution_count=1),
    ])
    findings = scan_notebook(nb_of(new_code_cell("x = 1"), cell))
    assert [(f.cell, f.line, f.rule, f.where) for f in findings] == [
        (2, 2, "openai-api-key", "output"), (2, 1, "password-assignment", "output")]
    assert str(findings[0]) == "output of cell 2, line 2: OpenAI API key (openai-api-key): " + redact(OPENAI)


def test_images_and_rich_outputs_are_not_scanned() -> None:
    """Base64 image data (and HTML, widget state) can hold any byte pattern, even an AKIA run."""
    png = base64.b64encode(b"\x89PNG" + AWS_ID.encode() + bytes(range(256))).decode()
    cell = new_code_cell("plt.show()", outputs=[new_output("display_data", data={
        "image/png": png, "text/html": "<b>" + AWS_ID + "</b>", "text/plain": "<Figure size 640x480>"})])
    assert scan_notebook(nb_of(cell)) == []


def test_one_value_is_reported_once_under_its_most_specific_rule() -> None:
    findings = scan_text('api_key = "' + OPENAI + '"\ntoken = "' + GHP + '"')
    assert [(f.line, f.rule) for f in findings] == [(1, "openai-api-key"), (2, "github-token")]


def test_finding_str_and_redaction() -> None:
    f = Finding(3, 2, "aws-access-key-id", RULES["aws-access-key-id"], redact(AWS_ID))
    assert str(f) == "cell 3, line 2: AWS access key id (aws-access-key-id): " + AWS_ID[:4] + "*" * 16
    assert redact("hunter2xyz") == "*" * 10  # short values are masked entirely
    assert redact(PRIVATE_BODY * 20) == PRIVATE_BODY[:4] + "*" * 32  # long ones are capped
    assert json.loads(json.dumps(vars(f)))["where"] == "source"  # `kagg preprocess --json` prints vars(f)


def test_check_notebook_raises_one_line_bad_input() -> None:
    nb = nb_of(new_code_cell("x = 1"), new_code_cell('import os\naws_secret_access_key = "' + AWS_SECRET + '"'),
               new_code_cell("password = 'hunter2xyz'"))
    with pytest.raises(SecretsFound) as info:
        check_notebook(nb, "nb.ipynb")
    err = info.value
    assert isinstance(err, BadInput) and err.exit_code == 2
    assert len(err.findings) == 2
    msg = str(err)
    assert "\n" not in msg and AWS_SECRET not in msg and "hunter2xyz" not in msg
    assert msg == ("found 2 possible credentials in nb.ipynb: cell 2, line 2: AWS secret access key "
                   "(aws-secret-access-key): " + redact(AWS_SECRET) + "; cell 3, line 1: hard-coded password "
                   "(password-assignment): **********; remove them (use environment variables or the cloud's "
                   "secret store) or pass --allow-secrets")


def test_check_notebook_message_is_bounded_and_singular_for_one() -> None:
    many = nb_of(*[new_code_cell(f"password{i} = 'hunter2xyz{i}'") for i in range(8)])
    with pytest.raises(SecretsFound, match=r"found 8 possible credentials .*; and 3 more; remove them"):
        check_notebook(many, "many.ipynb")
    with pytest.raises(SecretsFound, match=r"^found 1 possible credential in one.ipynb: cell 1.*; remove it \("):
        check_notebook(nb_of(new_code_cell("token = '" + GHP + "'")), "one.ipynb")
    assert check_notebook(nb_of(new_code_cell("password = getpass()")), "clean.ipynb") is None


def test_plain_dict_and_v3_notebooks() -> None:
    v4 = {"cells": [{"cell_type": "code", "source": ["x = 1\n", "token = '" + GHP + "'\n"], "outputs": []}]}
    v3 = {"worksheets": [{"cells": [{"cell_type": "markdown", "source": "hi"},
                                    {"cell_type": "code", "input": "key = '" + GCP_KEY + "'", "outputs": [
                                        {"output_type": "pyout", "text": ["'" + GCP_KEY + "'"]}]}]}]}
    assert [(f.cell, f.line, f.rule) for f in scan_notebook(v4)] == [(1, 2, "github-token")]
    assert [(f.cell, f.line, f.rule, f.where) for f in scan_notebook(v3)] == [
        (2, 1, "gcp-api-key", "source"), (2, 1, "gcp-api-key", "output")]
    assert scan_notebook({"cells": []}) == []


# -- look-alikes are not credentials ---------------------------------------------------------------

SHA256 = rand(HEX, 64)
MD5 = rand(HEX, 32)
COMMIT = rand(HEX, 40)
UUID = "-".join(rand(HEX, n) for n in (8, 4, 4, 4, 12))
AWS_DOC_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"
AWS_DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY" + "EXAMPLE" + "KEY"

LOOKALIKES = {
    "sha256": 'sha256 = "' + SHA256 + '"\nassert hashlib.sha256(data).hexdigest() == sha256',
    "checksum": "checksum = '" + MD5 + "'\nfile_hash = '" + MD5 + "'\nmd5 = '" + MD5 + "'",
    "cache-key": "cache_key = '" + MD5 + "'\nsort_key = 'abc123def'",
    "uuid": "run_id = '" + UUID + "'\nsession_token_id = '" + UUID + "'",
    "git-commit": "!git checkout " + COMMIT + "\nCOMMIT = '" + COMMIT + "'\nrevision = '" + COMMIT + "'",
    "aws-documented-example": ("aws_access_key_id = '" + AWS_DOC_ID + "'\naws_secret_access_key = '"
                               + AWS_DOC_SECRET + "'"),
    "names-not-values": "password_length = 12\ntoken_count = 5\nmax_tokens = 1024\nsecret_santa = 'Bob'",
    "name-of-a-secret": "gemini_api_secret_name = 'GOOGLE_API_KEY'  # @param {type: \"string\"}",
    "empty": 'password = ""\napi_key = \'\'',
    "angle-placeholder": 'api_key = "<your-key>"\ntoken = "<TOKEN>"',
    "caps-placeholder": 'API_KEY = "YOUR_API_KEY"\nOPENAI_API_KEY = "sk-..."',
    "x-placeholder": 'password = "xxx"\nsecret = "xxxxxxxxxxxx"\ntoken = "****"\npassword = "changeme"',
    "env-reads": 'password = os.environ["PASSWORD"]\ntoken = os.getenv("HF_TOKEN")\nkey = os.environ.get("API_KEY")',
    "getpass": "from getpass import getpass\npassword = getpass('Password: ')",
    "colab-userdata": "from google.colab import userdata\nGOOGLE_API_KEY = userdata.get('GOOGLE_API_KEY')",
    "f-string": 'token = f"{prefix}{suffix}1234"\nheaders = {"Authorization": f"Bearer {token}"}',
    "variable": "api_key = API_KEY\npassword = cfg.password\nPASSWORD=t0ps3cr3t",  # Python: names, not values
    "local-dummy-key": "self.api_key = 'sk-local'\nclient = OpenAI(api_key='EMPTY')",
    "special-tokens": "pad_token = '[PAD]'\neos_token = '</s>'\ntokenizer.pad_token = tokenizer.eos_token",
    "dict-key-word": "for key in scores:\n    key = 'relevance'\n    s3_key = 'data/2023/train.csv'",
    "shell-reference": "%nuclio env PASSWORD=${PASSWORD}\n!export TOKEN=$HF_TOKEN",
    "short-code": "%nuclio env API_KEY=1234",
    "placeholder-formats": ("token = 'ghp_" + "x" * 36 + "'\nkey = 'AKIA" + "X" * 16 + "'\n"
                            "hf = 'hf_" + "a" * 34 + "'"),
    "pem-header-only": "Paste your key as `-----BEGIN " + "PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----`",
    "prose": "The secret: nobody knows.\nThe password is shown on screen.\ntoken: a word piece",
    "url-without-password": 'url = "https://user@example.org/x"\nu = "postgres://app:${DB_PASS}@db/app"',
    "sas-without-version": "x = 'sig=" + rand(ALNUM, 44) + "'",
    "kaggle-secrets-client": ("from kaggle_secrets import UserSecretsClient\n"
                              "secret_value = UserSecretsClient().get_secret('OPENAI_API_KEY')"),
    "framework-dev-values": "app.config['SECRET_KEY'] = 'dev'\napp.secret_key = 'super secret key'",
    "hf-function-names": "hf_hub_download(repo_id='org/model', filename='model.bin', token=hf_token)",
    "hash-of-a-password": "password_hash = generate_password_hash(pw)\nPASSWORD_HASH = '" + SHA256 + "'",
}


@pytest.mark.parametrize("source", list(LOOKALIKES.values()), ids=list(LOOKALIKES))
def test_lookalike_is_not_a_credential(source: str) -> None:
    for make in (new_code_cell, new_markdown_cell):
        assert scan_notebook(nb_of(make(source))) == [], make.__name__


# -- the shared corpus -----------------------------------------------------------------------------

#: Expected findings per corpus notebook: (cell, line, rule, where). Absent files have none.
#: The MANIFEST marks 16, 21, 38 and 40 "secrets-like"; judged by hand:
#: - 16 (AIMO3 inference): ``self.api_key = 'sk-local'`` is the dummy key an OpenAI client needs to
#:   talk to a local vLLM server; a word, not a credential -> nothing.
#: - 21 (Colab Gemini): the key is read with ``userdata.get(...)``; ``gemini_api_secret_name =
#:   'GOOGLE_API_KEY'`` holds the *name* of a Colab secret -> nothing.
#: - 38 (nuclio example): ``%nuclio env PASSWORD=${PASSWORD}`` passes a reference through; outputs
#:   only say "setting 'PASSWORD'" -> nothing.
#: - 40 (nuclio tests): ``%%nuclio env`` sets ``PASSWORD=t0ps3cr3t``. Upstream it is a test dummy,
#:   but nothing in the text tells it from a real password (a literal value for a password
#:   variable, packaged as environment), so the deploy must stop: one finding. ``API_KEY=1234``
#:   in the next cell is a 4-digit stand-in, too short to be a key -> not reported.
CORPUS_EXPECTED: dict[str, list[tuple[int, int, str, str]]] = {
    "40-nuclio-handler-cell-magic-dummy-secrets.ipynb": [(4, 3, "password-assignment", "source")],
}
#: Not JSON at all (an R script saved with an .ipynb name); scanned as raw text instead.
CORPUS_UNREADABLE = {"03-broken-kaggle-r-script-saved-as-ipynb.ipynb"}


def corpus_files() -> list:
    return sorted(CORPUS.glob("*.ipynb"))


@needs_corpus
def test_corpus_findings_match_the_table() -> None:
    started = time.perf_counter()
    got: dict[str, list[tuple[int, int, str, str]]] = {}
    unreadable = set()
    for path in corpus_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            nb = json.loads(text)
        except ValueError:
            unreadable.add(path.name)
            found = [(0, f.line, f.rule, "raw") for f in scan_text(text, "raw")]
        else:
            found = [(f.cell, f.line, f.rule, f.where) for f in scan_notebook(nb)]
        if found:
            got[path.name] = found
    assert len(corpus_files()) >= 40
    assert unreadable == CORPUS_UNREADABLE
    assert got == CORPUS_EXPECTED
    assert time.perf_counter() - started < 5


@needs_corpus
def test_corpus_notebook_40_stops_a_deploy_without_showing_the_password() -> None:
    nb = nbformat.read(str(CORPUS / "40-nuclio-handler-cell-magic-dummy-secrets.ipynb"), as_version=4)
    with pytest.raises(SecretsFound) as info:
        check_notebook(nb, "40.ipynb")
    assert "cell 4, line 3: hard-coded password (password-assignment): *********" in str(info.value)
    assert "t0ps3cr3t" not in str(info.value)


def test_pathological_input_is_fast() -> None:
    """Regexes must stay linear: outputs can be megabytes of one line."""
    n = 4000  # ~20-40 kB each: linear scanning takes well under a second, a quadratic regex far longer
    blobs = ["a: " * n, 'token="' * n, "a=b " * n, "x" * 5 * n, "-----BEGIN " * n, "sig=" * n, "http://" * n,
             "password: " * n, base64.b64encode(random.Random(1).randbytes(4 * n)).decode()]
    started = time.perf_counter()
    for blob in blobs:
        for kind in ("code", "raw"):  # Python text, and text where bare NAME=value counts
            scan_text(blob, kind)
    assert time.perf_counter() - started < 3
