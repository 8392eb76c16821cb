"""Security properties of the code itself, read from its syntax tree: secrets, signatures and
tokens are compared in constant time, and the environment is read only through the settings."""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The runtime code: the package and the Chalice app.
SOURCES = sorted([*(ROOT / "chalicelib").rglob("*.py"), ROOT / "app.py"])

# ── constant-time comparisons ─────────────────────────────────────────────────────────────

#: A word of an identifier (split at `_` and camelCase) that makes it look like a secret.
SECRET_WORDS = frozenset(
    {
        "secret",
        "secrets",
        "signature",
        "signatures",
        "sig",
        "sigs",
        "token",
        "tokens",
        "mac",
        "hmac",
        "digest",
        "digests",
        "password",
        "passwd",
        "credential",
        "credentials",
        "apikey",
    }
)
#: Two words that together name a key that is a secret ("key" alone is mostly a blob key, a
#: cache key or a dict key: not a secret).
SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("api", "keys"),
        ("private", "key"),
        ("signing", "key"),
        ("secret", "key"),
        ("access", "key"),
        ("client", "secret"),
    }
)
#: (file, name) → why a `==`/`!=`/`in` on that name compares no secret.
NOT_SECRETS = {
    ("chalicelib/render/text/breaking.py", "token"): "a word of the text being laid out",
}


def _words(name: str) -> list[str]:
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return [w for w in snake.split("_") if w]


def _secretish(name: str) -> bool:
    words = _words(name)
    return bool(SECRET_WORDS.intersection(words)) or any(
        pair in SECRET_PAIRS for pair in itertools.pairwise(words)
    )


def _names(node: ast.AST) -> Iterator[str]:
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            yield n.id
        elif isinstance(n, ast.Attribute):
            yield n.attr


def secret_comparisons(source: str, path: str) -> list[str]:
    """`path:line: names: code` of each ==, !=, in, not in whose operands name something that
    looks like a secret (less NOT_SECRETS)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            continue
        names = {
            name
            for operand in (node.left, *node.comparators)
            for name in _names(operand)
            if _secretish(name) and (path, name) not in NOT_SECRETS
        }
        if names:
            found.append(f"{path}:{node.lineno}: {sorted(names)}: {ast.unparse(node)}")
    return found


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_scan_sees_a_secret_compared_with_equals() -> None:
    # GIVEN code that compares a signature, a token and an API key with == / in
    code = (
        "def check(request, expected_sig, keys):\n"
        "    if request.headers['x-sig'] == expected_sig:\n"
        "        return True\n"
        "    if self.api_key != given:\n"
        "        return False\n"
        "    return page.token in tokens\n"
    )
    # THEN each comparison is reported, and a blob key compared with == is not
    found = secret_comparisons(code, "example.py")
    assert [line.split(":")[1] for line in found] == ["2", "4", "6"]
    assert secret_comparisons("if key == other_key:\n    pass\n", "example.py") == []


def test_no_secret_is_compared_with_equals_or_in() -> None:
    found = [
        hit
        for path in SOURCES
        for hit in secret_comparisons(path.read_text(encoding="utf-8"), _relative(path))
    ]
    assert found == [], "compare secrets with hmac.compare_digest:\n" + "\n".join(found)


def test_the_not_secrets_allow_list_is_still_needed() -> None:
    # An entry whose name no longer occurs in a comparison of its file is stale: remove it.
    for (path, name), reason in NOT_SECRETS.items():
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        compared = {
            n
            for node in ast.walk(tree)
            if isinstance(node, ast.Compare)
            for operand in (node.left, *node.comparators)
            for n in _names(operand)
        }
        assert name in compared, f"stale NOT_SECRETS entry {path}:{name} ({reason})"


def _calls(tree: ast.AST, function: str) -> set[str]:
    """Dotted names called inside `function` (a def anywhere in `tree`)."""
    (fn,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function
    ]
    return {ast.unparse(node.func) for node in ast.walk(fn) if isinstance(node, ast.Call)}


@pytest.mark.parametrize(
    ("path", "function"),
    [
        ("chalicelib/landing/tokens.py", "verify"),  # the page script's signed token
        ("chalicelib/landing/tokens.py", "verify_media"),  # local signed media URLs
        ("chalicelib/api/__init__.py", "require_key"),  # x-api-key
        ("chalicelib/connectors/inbound.py", "verify_hubspot_v3"),
        ("chalicelib/connectors/inbound.py", "verify_salesforce"),
    ],
)
def test_verification_points_use_compare_digest(path: str, function: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    assert "hmac.compare_digest" in _calls(tree, function)


def test_standard_webhooks_verify_uses_compare_digest() -> None:
    # verify_standard hands the check to the standardwebhooks package: read what it runs.
    from standardwebhooks.webhooks import Webhook

    from chalicelib.connectors import inbound

    assert "webhook.verify" in _calls(ast.parse(inspect.getsource(inbound)), "verify_standard")
    source = inspect.getsource(Webhook.verify)
    assert "hmac.compare_digest(" in source
    assert not re.search(r"(expected_sig|sig_bytes|signature)\s*==", source)


def test_verifiers_refuse_what_they_were_not_given() -> None:
    from chalicelib.landing import tokens

    signed = tokens.signed_token("k", "tok", "ada", "tiny")
    assert tokens.verify("k", signed, "ada", "tiny")
    assert not tokens.verify("k", signed, "bob", "tiny")
    assert not tokens.verify("other", signed, "ada", "tiny")
    assert not tokens.verify("k", signed[:-1] + ("A" if signed[-1] != "A" else "B"), "ada", "tiny")
    sig = tokens.media_signature("k", "videos/a.mp4", 1_800_000_000)
    assert tokens.verify_media("k", "videos/a.mp4", "1800000000", sig)
    # Another key, expiry or secret; and expiries that only look like the number
    assert not tokens.verify_media("k", "videos/b.mp4", "1800000000", sig)
    assert not tokens.verify_media("k", "videos/a.mp4", "1800000001", sig)
    assert not tokens.verify_media("other", "videos/a.mp4", "1800000000", sig)
    for expires in ("+1800000000", " 1800000000", "1800000000.0", "１８００００００００", ""):
        assert not tokens.verify_media("k", "videos/a.mp4", expires, sig), expires
    # A page token's signature is no media signature (another message shape)
    assert not tokens.verify_media("k", "tok", "1800000000", tokens.split(signed)[1])


# ── the environment is read by the settings only ──────────────────────────────────────────

#: Files that touch os.environ, each with its reason. Everything else reads `get_settings()`.
ENVIRON_USERS = {
    "chalicelib/settings.py": "the Settings object: every REEL_* variable (through pydantic)",
}
_ENVIRON_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def environ_uses(source: str) -> list[int]:
    """Lines that use os.environ / os.getenv & co (attribute, or imported from os)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in _ENVIRON_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in ("os", "_os", "posix")
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module in ("os", "posix")
            and any(a.name in _ENVIRON_NAMES for a in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_the_environ_scan_sees_every_spelling() -> None:
    code = "import os\nfrom os import getenv\nx = os.environ['A']\ny = os.getenv('B')\n"
    assert environ_uses(code) == [2, 3, 4]


def test_only_the_settings_read_the_environment() -> None:
    users = {_relative(p): environ_uses(p.read_text(encoding="utf-8")) for p in SOURCES}
    unexpected = {
        path: lines for path, lines in users.items() if lines and path not in ENVIRON_USERS
    }
    assert unexpected == {}, "read settings through chalicelib.settings.get_settings()"
    # The allow-list stays exact: a file that stopped using the environment leaves it.
    stale = [path for path in ENVIRON_USERS if path != "chalicelib/settings.py" and not users[path]]
    assert stale == []
