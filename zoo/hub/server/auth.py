"""Users, hashed tokens, namespace ownership and URL signing for the embedded Hub.

Layout under `<root>/auth` (mode 0700): `tokens.json` (0600; a per-store salt and, per token, the
HMAC-SHA256 of the token under that salt: never the token itself), `secret` (0600; the key that
signs upload URLs), `namespaces/<sha256(ns)>.json` (who claimed a namespace first). The admin
token's plaintext is kept only in `<root>/admin.token` (0600), so whoever can read the directory
acts as admin, as the CLI contract requires.

Rules: a token names a user; a read token can read, a write token can also create repos in its
own namespace or in a namespace nobody has claimed (the first creator owns it) and write the repos
of namespaces it owns; the admin may do anything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import UserError
from zoo.hub.server.fsutil import atomic_write, create_exclusive, dump_json, file_lock, read_json

ADMIN_NAME = "admin"
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class User:
    """An authenticated caller: its name (= its namespace) and what its token may do."""

    name: str
    write: bool
    admin: bool = False

    @property
    def role(self) -> str:
        """The Hub's word for the token's scope."""
        return "admin" if self.admin else ("write" if self.write else "read")


def _check_user_name(name: str) -> str:
    if not _NAME_RE.match(name or "") or "--" in name or ".." in name:
        raise UserError(
            f"invalid token name {name!r}: use letters, digits, '.', '_', '-' "
            "(it becomes a namespace)"
        )
    if name.lower() == ADMIN_NAME:
        raise UserError(f"the token name {name!r} is reserved for the store's admin token")
    return name


def _by_digest(data: dict, digest: str) -> User | None:
    """The user whose token record has this hash (no early exit: the same time for any digest)."""
    found = None
    for rec in data["tokens"]:
        if hmac.compare_digest(digest, rec["hash"]):
            found = User(rec["name"], rec["write"] or rec["admin"], rec["admin"])
    return found


class AuthStore:
    """Token and namespace records of one store; every method is safe across processes."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / "auth"
        self._tokens_path = self.dir / "tokens.json"
        self._lock = self.dir / ".lock"
        self._admin_path = root / "admin.token"
        self._cache: tuple[tuple[int, int, int], dict] | None = None
        self._secret: bytes | None = None
        self._ensure()

    # -- tokens -----------------------------------------------------------------------------

    def _ensure(self) -> None:
        """Create the salt, the signing secret and the admin token if any is missing."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self._lock):
            if not (self.dir / "secret").exists():
                atomic_write(self.dir / "secret", secrets.token_bytes(32), mode=0o600)
            data = self._load_unlocked()
            if not self._admin_valid(data):
                self._new_admin_unlocked(data)

    def _load_unlocked(self) -> dict:
        try:
            return read_json(self._tokens_path)
        except FileNotFoundError:
            return {"version": 1, "salt": secrets.token_hex(32), "tokens": []}

    def _hash(self, salt: str, token: str) -> str:
        return hmac.new(bytes.fromhex(salt), token.encode(), hashlib.sha256).hexdigest()

    def _admin_valid(self, data: dict) -> bool:
        try:
            token = self._admin_path.read_text().strip()
        except FileNotFoundError:
            return False
        user = self._match(data, token)
        return user is not None and user.admin

    def _new_admin_unlocked(self, data: dict) -> None:
        token = "hf_zoo_" + secrets.token_urlsafe(32)
        data["tokens"] = [t for t in data["tokens"] if not t.get("admin")]
        data["tokens"].append(self._record(data["salt"], token, ADMIN_NAME, True, True))
        # tokens.json first: a crash before admin.token is written is healed by the next _ensure().
        atomic_write(self._tokens_path, dump_json(data), mode=0o600)
        atomic_write(self._admin_path, (token + "\n").encode(), mode=0o600)

    def _record(self, salt: str, token: str, name: str, write: bool, admin: bool) -> dict:
        return {
            "name": name,
            "hash": self._hash(salt, token),
            "write": bool(write),
            "admin": bool(admin),
            "created": int(time.time()),
        }

    def add_token(self, name: str, write: bool) -> str:
        """Create a token for user `name`; return its plaintext (shown once; its hash is kept)."""
        _check_user_name(name)
        token = "hf_zoo_" + secrets.token_urlsafe(32)
        with file_lock(self._lock):
            data = self._load_unlocked()
            data["tokens"].append(self._record(data["salt"], token, name, write, False))
            atomic_write(self._tokens_path, dump_json(data), mode=0o600)
        return token

    def admin_token(self) -> str:
        """Return the admin token's plaintext from `<root>/admin.token`."""
        if not self._admin_path.exists():
            self._ensure()
        return self._admin_path.read_text().strip()

    def _data(self) -> dict:
        st = self._tokens_path.stat()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, read_json(self._tokens_path))
        return self._cache[1]

    def _match(self, data: dict, token: str) -> User | None:
        return _by_digest(data, self._hash(data["salt"], token))

    def authenticate(self, token: str) -> User | None:
        """Return the user a token belongs to, or None if unknown; reloads tokens.json on change."""
        return self._match(self._data(), token)

    # -- web sessions -------------------------------------------------------------------------
    # A browser signed in with a token keeps a signed session, never the token: the record's
    # salted hash, an expiry and this store's signature. Deleting the token ends its sessions.

    def new_session(self, token: str, lifetime_s: int) -> str | None:
        """A session value for a browser signed in with `token`; None if the token is unknown."""
        data = self._data()
        digest = self._hash(data["salt"], token)
        if _by_digest(data, digest) is None:
            return None
        expiry = int(time.time()) + lifetime_s
        return f"{expiry}.{digest}.{self.sign(f'web-session:{expiry}:{digest}')}"

    def session_user(self, value: str) -> User | None:
        """The user of a session value: signed here, not expired, its token still on record."""
        expiry, _, rest = value.partition(".")
        digest, _, signature = rest.partition(".")
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        if not self.check_signature(f"web-session:{expiry}:{digest}", signature):
            return None
        return _by_digest(self._data(), digest)

    # -- namespaces ---------------------------------------------------------------------------

    def _ns_path(self, namespace: str) -> Path:
        return (
            self.dir
            / "namespaces"
            / (hashlib.sha256(namespace.lower().encode()).hexdigest() + ".json")
        )

    def namespace_owner(self, namespace: str) -> str | None:
        """Return who owns `namespace`: its claimant, else the user of that name, else None."""
        try:
            return read_json(self._ns_path(namespace))["owner"]
        except FileNotFoundError:
            pass
        for rec in self._data()["tokens"]:
            if rec["name"].lower() == namespace.lower() and not rec["admin"]:
                return rec["name"]
        return None

    def claim_namespace(self, namespace: str, user: User) -> str:
        """Make `user` the owner of an unowned namespace (first creator wins); return the owner."""
        owner = self.namespace_owner(namespace)
        if owner is not None:
            return owner
        record = dump_json(
            {"namespace": namespace, "owner": user.name, "claimed": int(time.time())}
        )
        create_exclusive(self._ns_path(namespace), record)
        return read_json(self._ns_path(namespace))["owner"]

    # -- signing ------------------------------------------------------------------------------

    def sign(self, message: str) -> str:
        """Return the HMAC-SHA256 of `message` under the store's secret (hex)."""
        if self._secret is None:
            self._secret = (self.dir / "secret").read_bytes()
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def check_signature(self, message: str, signature: str) -> bool:
        """True when `signature` is this store's signature of `message` (constant time)."""
        return hmac.compare_digest(self.sign(message), signature or "")
