"""Password rules and hashing (暂行办法 art. 14; DESIGN.md §10): 10 to 128 characters, 3 of the 4 classes, not on
the vendored common-password list (``data/common-passwords.txt.gz``), not containing the username, not one of the
last 5; hashed with Argon2id (argon2-cffi); one-time passwords for resets."""

from __future__ import annotations

import gzip
import re
import secrets
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from common.errors import FieldError, ValidationError

MIN_PASSWORD, MAX_PASSWORD = 10, 128


PASSWORD_HISTORY = 5


_HASHER = PasswordHasher()  # argon2-cffi's RFC 9106 defaults (Argon2id, 64 MiB, 3 passes)


# made on first use (dummy_hash), not at import: an Argon2id hash costs about 120 ms of CPU and 64 MiB, which every
# tmis process — each CLI command, each sync round — paid at start-up although only logins need it
_DUMMY_HASH: str | None = None


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the hasher (tests use cheaper parameters; existing hashes keep verifying: Argon2 hashes
    carry their own parameters)."""
    global _HASHER, _DUMMY_HASH
    _HASHER = hasher
    _DUMMY_HASH = None


@cache
def common_passwords() -> frozenset[str]:
    """The vendored common-password list (lower case; see ``data/README.md``)."""
    raw = resources.files("provincial_node.accounts").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode("utf-8").split())


def check_password(password: str, *, username: str | None = None, previous: tuple[str, ...] = ()) -> None:
    """Every rule a new password must meet; all failures are reported at once (field ``password``).
    ``previous``: the hashes of the account's last passwords."""
    password = password or ""
    reasons: list[tuple[str, str]] = []
    if len(password) < MIN_PASSWORD or len(password) > MAX_PASSWORD:
        reasons.append((f"密码长度应为{MIN_PASSWORD}–{MAX_PASSWORD}位", f"{MIN_PASSWORD} to {MAX_PASSWORD} characters"))
    classes = sum(bool(re.search(p, password)) for p in (r"[A-Z]", r"[a-z]", r"\d", r"[^A-Za-z0-9]"))
    if classes < 3:
        reasons.append(
            (
                "密码应包含大写字母、小写字母、数字、符号中的至少3类",
                "3 of: upper case, lower case, digits, symbols",
            )
        )
    if password.lower() in common_passwords():
        reasons.append(("密码过于常见，容易被猜中", "a common password, easily guessed"))
    if username and len(username) >= 3 and username.lower() in password.lower():
        reasons.append(("密码不能包含用户名", "must not contain the username"))
    if len(password) <= MAX_PASSWORD and any(password_matches(h, password) for h in previous):
        reasons.append(
            (f"不能与最近{PASSWORD_HISTORY}次使用的密码相同", f"must differ from the last {PASSWORD_HISTORY}")
        )
    if reasons:
        raise ValidationError(
            "the password does not meet the password rules",
            [FieldError("account", "password", zh, en, label="密码") for zh, en in reasons],
        )


def check_password_strength(password: str, username: str | None = None) -> None:
    """The rules a password must meet without history (initial passwords, ``tmis province init``)."""
    check_password(password, username=username)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def one_time_password() -> str:
    """A random password meeting the rules (4 classes, 16 characters), shown once and changed at first use."""
    while True:
        candidate = secrets.token_urlsafe(12)[:14] + secrets.choice("23456789") + secrets.choice("#%+=")
        if re.search(r"[A-Z]", candidate) and re.search(r"[a-z]", candidate):
            return candidate


def dummy_hash() -> str:
    """A hash to check a password against when the username is unknown (the same cost as a real check). Made
    once per process; the app factory makes it at start-up, so a server's first unknown-username login takes as
    long as any other."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _HASHER.hash("tmis: same cost for unknown usernames")
    return _DUMMY_HASH
