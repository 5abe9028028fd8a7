"""Password hashes of the login page's users (``GENIE_LOGIN_USERS``), standard library only.

A hash is ``pbkdf2_sha256$<iterations>$<salt>$<key>`` (base64, no padding): PBKDF2-HMAC-
SHA256, OWASP's 600,000 iterations by default, a 16-byte random salt. Checking one takes
~0.3 s of CPU on purpose; the login route runs it in a thread and rate-limits attempts.

Make an entry (the password is asked twice, or read from stdin when piped)::

    python -m fastapi_app.auth.passwords alice      # prints alice:pbkdf2_sha256$600000$...
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000
SALT_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True, slots=True)
class PasswordHash:
    iterations: int
    salt: bytes
    key: bytes

    @classmethod
    def parse(cls, encoded: str) -> PasswordHash:
        """ValueError, saying what is expected, for anything but our own format."""
        scheme, _, rest = encoded.partition("$")
        try:
            iterations, salt, key = rest.split("$")
            parsed = cls(int(iterations), _unb64(salt), _unb64(key))
        except ValueError:
            parsed = None
        if scheme != SCHEME or parsed is None or parsed.iterations < 1 or not parsed.key:
            raise ValueError(f"not a {SCHEME}$<iterations>$<salt>$<key> hash")
        return parsed

    def matches(self, password: str) -> bool:
        key = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, self.iterations)
        return hmac.compare_digest(key, self.key)  # constant time

    def __str__(self) -> str:
        return f"{SCHEME}${self.iterations}${_b64(self.salt)}${_b64(self.key)}"


def make_hash(password: str, *, iterations: int = ITERATIONS) -> PasswordHash:
    salt = os.urandom(SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return PasswordHash(iterations, salt, key)


def parse_users(entries: list[str]) -> dict[str, PasswordHash]:
    """``name:hash`` entries -> {name: hash}; ValueError naming the bad entry's user."""
    users: dict[str, PasswordHash] = {}
    for entry in entries:
        name, sep, encoded = entry.partition(":")
        if not sep or not name.strip():
            raise ValueError("GENIE_LOGIN_USERS: every entry is 'name:hash'")
        try:
            users[name.strip()] = PasswordHash.parse(encoded.strip())
        except ValueError as exc:
            raise ValueError(f"GENIE_LOGIN_USERS: user {name.strip()!r}: {exc}") from None
    return users


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the two passwords differ")
    return first


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fastapi_app.auth.passwords",
        description="Print a GENIE_LOGIN_USERS entry 'name:hash' for one user; the "
        "password is asked twice (or read from stdin when piped).",
    )
    parser.add_argument("name", help="the user name (no ':' or ',')")
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="PBKDF2 rounds")
    args = parser.parse_args(argv)
    if not args.name.strip() or set(args.name) & {":", ","}:
        parser.error("the name must be non-empty, without ':' or ','")
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    password = _read_password()
    if not password:
        raise SystemExit("the password is empty")
    print(f"{args.name}:{make_hash(password, iterations=args.iterations)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
