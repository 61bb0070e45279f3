"""Users and API keys (server mode).

Passwords are kept as scrypt hashes with a random salt.  An API key is 32
random bytes shown once at login; the store keeps only its SHA-256, under
``apikeys/<sha256>``, with its user, creation, last use and expiry; its id is
the first 16 hex digits of that hash.  Changing a password revokes every key
of that user.  The first start on an empty store creates ``admin`` with a
random temporary password that must be changed at the first login.

Each user has a role and maybe a scope (core/policy.py).  A user stored
before roles existed has none and is an admin (IAG 5's users are all
superusers).  Wrong passwords are throttled per user and per source address
(core/throttle.py).

Users and API keys carry a MAC bound to their key (core/integrity.py): a
record written into the store by anything but the gateway, or moved to
another name, is refused as if it were not there, and said in the log and the
audit trail.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from typing import Any, Iterator

from ...store import KeyExists, RevisionMismatch, Store
from ..errors import (AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NoSuchUser, NotFound,
                     PermissionDenied, Unauthenticated)
from .integrity import RecordMacs, Untrusted, fingerprint
from .roles import ADMIN as ADMIN_ROLE, DEFAULT_ROLE, LEGACY_ROLE, check_role, check_scope
from ..resources.base import check_name, field_error, now
from .throttle import LoginThrottle

ADMIN = "admin"
KEY_ID_LENGTH = 16
LAST_USED_EVERY = 60.0  # seconds: a key's last use is written at most this often
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return {"kdf": "scrypt", **_SCRYPT, "salt": base64.b64encode(salt).decode(),
            "hash": base64.b64encode(digest).decode()}


def password_matches(password: str, stored: dict[str, Any]) -> bool:
    salt = base64.b64decode(stored["salt"])
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024,
                            n=stored["n"], r=stored["r"], p=stored["p"])
    return hmac.compare_digest(digest, base64.b64decode(stored["hash"]))


# scrypt takes tens of milliseconds and 16 MiB each: it runs in worker threads (it releases the interpreter),
# never on the event loop, and at most HASHING_AT_ONCE at a time, so wrong logins cannot stall other callers.
HASHING_AT_ONCE = 2
_hashing: asyncio.Semaphore | None = None
_hashing_loop: asyncio.AbstractEventLoop | None = None


async def _off_loop(fn, *args):
    global _hashing, _hashing_loop
    loop = asyncio.get_running_loop()
    if _hashing is None or _hashing_loop is not loop:
        _hashing, _hashing_loop = asyncio.Semaphore(HASHING_AT_ONCE), loop
    async with _hashing:
        return await asyncio.to_thread(fn, *args)


async def hash_password_async(password: str) -> dict[str, Any]:
    return await _off_loop(hash_password, password)


async def password_matches_async(password: str, stored: dict[str, Any]) -> bool:
    return await _off_loop(password_matches, password, stored)


_STAND_IN: dict[str, Any] = {}


async def _stand_in() -> dict[str, Any]:
    """A stored password of no one, to compare against when the user does not exist (made once)."""
    if not _STAND_IN:
        _STAND_IN.update(await hash_password_async(secrets.token_urlsafe(16)))
    return _STAND_IN


def check_password(password: Any) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise field_error("password", f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD or "\x00" in password:
        raise field_error("password", f"a password may have at most {MAX_PASSWORD} characters and no NUL")


def new_password() -> str:
    return secrets.token_urlsafe(15)


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclasses.dataclass
class User:
    name: str
    role: str = DEFAULT_ROLE
    scope: list[str] = dataclasses.field(default_factory=list)  # service tags; empty: every service
    created_at: str = dataclasses.field(default_factory=now)
    last_login_at: str = ""
    must_change_password: bool = False
    password: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def admin(self) -> bool:
        return self.role == ADMIN_ROLE

    def public(self) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "password"}
        data["admin"] = self.admin
        return data

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["admin"] = self.admin  # read by a gateway from before roles
        return data

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "User":
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "User":
        known = {f.name for f in dataclasses.fields(cls)}
        user = cls(**{k: v for k, v in data.items() if k in known})
        if "role" not in data:  # stored before roles: an admin, as in IAG 5
            user.role = LEGACY_ROLE
        return user


@dataclasses.dataclass(frozen=True)
class Session:
    user: User
    key_digest: str
    expires_at: float


_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("gateway_session", default=None)


def current_session() -> Session:
    """The session of the user whose call is being served (on a server, set by the face for each call)."""
    session = _session.get()
    if session is None:
        raise Unauthenticated("not logged in: run gateway login")
    return session


@contextlib.contextmanager
def in_session(session: Session | None) -> Iterator[None]:
    """What runs inside is on behalf of `session` (None: nobody logged in, as for a login itself)."""
    token = _session.set(session)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # ended from another context: nothing to put back
            _session.reset(token)


class Auth:
    def __init__(self, store: Store, key_minutes: float = 1440, throttle: LoginThrottle | None = None,
                 macs: RecordMacs | None = None, default_role: str = DEFAULT_ROLE):
        """`macs`: signs and checks users and API keys (a server always has them; without, records are
        taken as stored).  `default_role`: a new user's role when none is given ([server] default_user_role)."""
        self.store = store
        self.default_role = check_role(default_role)
        self.key_seconds = key_minutes * 60
        self.throttle = throttle or LoginThrottle(store)
        self.macs = macs

    # ------------------------------------------------------------ records in the store
    def _encode(self, key: str, data: dict[str, Any]) -> bytes:
        if self.macs is None:
            return json.dumps(data, sort_keys=True).encode()
        return self.macs.sign(key, data)

    async def _open(self, key: str, raw: bytes) -> dict[str, Any] | None:
        """The record stored under `key`; None (said in the log and the audit trail) when it is not trusted."""
        if self.macs is None:
            try:
                data = json.loads(raw)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
        try:
            return self.macs.open(key, raw)
        except Untrusted as exc:
            await self.macs.refused(key, str(exc), fingerprint(raw))
            return None

    async def _user(self, key: str, raw: bytes) -> User | None:
        data = await self._open(key, raw)
        if data is None:
            return None
        try:
            return User.from_dict(data)
        except TypeError:
            return None

    # ------------------------------------------------------------ users in the store
    async def _load(self, name: str, untrusted_too: bool = False) -> tuple[User, int]:
        entry = await self.store.get(f"users/{name}")
        if entry is None:
            raise NotFound(f"user {name!r} not found")
        user = await self._user(entry.key, entry.value)
        if user is None:
            if untrusted_too:
                return User(name), entry.revision
            raise FailedPrecondition(
                f"the record of user {name} carries no valid MAC (written outside the gateway, or damaged): it is "
                f"not trusted; delete it (gateway delete user {name}) and create the user again")
        return user, entry.revision

    async def _save(self, user: User, revision: int) -> None:
        key = f"users/{user.name}"
        try:
            await self.store.update(key, self._encode(key, user.to_dict()), revision)
        except RevisionMismatch:
            raise Conflict(f"user {user.name} was changed meanwhile; try again") from None

    async def list_users(self) -> list[User]:
        users = []
        for entry in await self.store.list("users/"):
            user = await self._user(entry.key, entry.value)
            if user is not None:
                users.append(user)
        return users

    async def get_user(self, name: str) -> User:
        return (await self._load(name))[0]

    async def ensure_admin(self) -> str | None:
        """On a store with no users, create `admin` with a temporary password and return it (once)."""
        if await self.list_users():
            return None
        password = new_password()
        user = User(ADMIN, role=ADMIN_ROLE, must_change_password=True, password=await hash_password_async(password))
        try:
            await self.store.create(f"users/{ADMIN}", self._encode(f"users/{ADMIN}", user.to_dict()))
        except KeyExists:
            return None  # another server made it first
        return password

    async def reset_password(self, name: str, password: str | None = None) -> str:
        """Recovery on the server host: a new password (random unless given) that must be changed."""
        user, revision = await self._load(name)  # a record without a valid MAC is not made trusted here
        chosen = password if password is not None else new_password()
        check_password(chosen)
        user.password = await hash_password_async(chosen)
        user.must_change_password = password is None
        await self._save(user, revision)
        await self.revoke_keys(name)
        return chosen

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> User:
        """A new user; with `temporary`, the password must be changed at the first login.  `admin` is role
        admin; with neither, the role is the default role."""
        check_name("user", name)
        if admin and role and role != ADMIN_ROLE:
            raise InvalidArgument(f"admin and role {role} contradict each other: give one of them")
        chosen = check_role(role or (ADMIN_ROLE if admin else self.default_role))
        check_scope(chosen, tuple(scope))
        check_password(password)
        user = User(name, role=chosen, scope=list(scope), password=await hash_password_async(password),
                    must_change_password=temporary)
        try:
            await self.store.create(f"users/{name}", self._encode(f"users/{name}", user.to_dict()))
        except KeyExists:
            raise AlreadyExists(f"user {name!r} already exists") from None
        return user

    async def update_user(self, actor: User, name: str, admin: bool | None = None,
                          password: str | None = None, role: str | None = None,
                          scope: tuple[str, ...] | None = None, unlock: bool = False) -> User:
        """Change a role (`admin` True is role admin, False the default role), a scope (() for none), a
        password (revokes the user's keys); `unlock` lifts a lock after failed logins."""
        user, revision = await self._load(name)
        if admin is not None and role is not None and (role == ADMIN_ROLE) != admin:
            raise InvalidArgument(f"admin and role {role} contradict each other: give one of them")
        if role is None and admin is not None:
            role = ADMIN_ROLE if admin else (user.role if not user.admin else DEFAULT_ROLE)
        if role is not None:
            check_role(role)
            if user.admin and role != ADMIN_ROLE:
                if name == actor.name:
                    raise FailedPrecondition("you cannot take away your own admin rights")
                await self._check_not_last_admin(name)
            user.role = role
            if role == ADMIN_ROLE:
                user.scope = []
        if scope is not None:
            user.scope = list(scope)
        check_scope(user.role, tuple(user.scope))
        if unlock:
            await self.throttle.unlock(name)
        if password is not None:
            check_password(password)
            user.password = await hash_password_async(password)
            user.must_change_password = False
        await self._save(user, revision)
        if password is not None:
            await self.revoke_keys(name)
        return user

    async def delete_user(self, actor: User, name: str) -> None:
        user, revision = await self._load(name, untrusted_too=True)  # a forged record can be deleted
        if name == actor.name:
            raise FailedPrecondition("you cannot delete yourself")
        if user.admin:
            await self._check_not_last_admin(name)
        await self.revoke_keys(name)
        await self.store.delete(f"users/{name}", revision)
        await self.throttle.unlock(name)

    async def _check_not_last_admin(self, name: str) -> None:
        admins = [u.name for u in await self.list_users() if u.admin and u.name != name]
        if not admins:
            raise FailedPrecondition(f"{name} is the last admin; make another user admin first")

    # ------------------------------------------------------------ keys
    async def login(self, name: str, password: str, new: str = "", source: str = "") -> tuple[str, float, User]:
        """A new API key for `name`.  `source` is the caller's address: wrong passwords are throttled per
        user and per address, and while either is locked even the right password is refused."""
        entry = await self.store.get(f"users/{name}") if isinstance(name, str) and 0 < len(name) <= 256 else None
        user = await self._user(entry.key, entry.value) if entry is not None else None  # a forged one: None
        failure = (Unauthenticated if user is not None else NoSuchUser)("wrong username or password")
        try:  # counted as a wrong password before any hashing (a success takes it back): see core/throttle.py
            await self.throttle.attempt(name if user is not None else "", source)
        except Unauthenticated as refused:
            raise refused if user is not None else NoSuchUser(str(refused)) from None
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            raise failure  # no stored password is that long: nothing to hash
        if entry is None or user is None:
            await password_matches_async(password, await _stand_in())  # the same work whether or not the user exists
            raise failure
        revision = entry.revision
        if not await password_matches_async(password, user.password):
            raise failure
        await self.throttle.succeeded(name, source)
        if user.must_change_password or new:
            if not new:
                raise FailedPrecondition(
                    f"the password of {name} is temporary and must be changed first: "
                    "log in again with a new password (gateway login --change-password)")
            if new == password:
                raise InvalidArgument("the new password must differ from the old one")
            check_password(new)
            user.password = await hash_password_async(new)
            user.must_change_password = False
            await self.revoke_keys(name)
        user.last_login_at = now()
        await self._save(user, revision)
        api_key = "gw_" + secrets.token_urlsafe(32)
        expires_at = time.time() + self.key_seconds
        record = {"user": name, "expires_at": expires_at, "created_at": now(), "last_used_at": now(),
                  "last_used": time.time()}
        key = f"apikeys/{key_digest(api_key)}"
        await self.store.put(key, self._encode(key, record))
        return api_key, expires_at, user

    async def change_password(self, name: str, password: str, new: str, source: str = "") -> None:
        await self.login(name, password, new, source)  # checks the old one, sets the new one, revokes keys
        await self.revoke_keys(name)

    async def authenticate(self, api_key: str | None) -> Session:
        if not api_key:
            raise Unauthenticated("not logged in: run gateway login")
        digest = key_digest(api_key)
        entry = await self.store.get(f"apikeys/{digest}")
        record = await self._open(entry.key, entry.value) if entry is not None else None
        if entry is None or record is None or not isinstance(record.get("user"), str) \
                or not isinstance(record.get("expires_at"), (int, float)):
            raise Unauthenticated("the API key is not valid (revoked or unknown): run gateway login")
        if record["expires_at"] <= time.time():
            await self.store.delete(f"apikeys/{digest}")
            raise Unauthenticated("the API key has expired: run gateway login")
        user_entry = await self.store.get(f"users/{record['user']}")
        user = await self._user(user_entry.key, user_entry.value) if user_entry is not None else None
        if user is None or user.name != record["user"]:
            raise Unauthenticated("the user of this API key no longer exists")
        await self._used(digest, record, entry.revision)
        return Session(user, digest, record["expires_at"])

    async def _used(self, digest: str, record: dict[str, Any], revision: int) -> None:
        """Note the key's last use, at most once a minute (a write per call would cost every call)."""
        last = record.get("last_used", 0.0)
        if time.time() - last < LAST_USED_EVERY:
            return
        record = dict(record, last_used=time.time(), last_used_at=now())
        try:
            await self.store.update(f"apikeys/{digest}", self._encode(f"apikeys/{digest}", record), revision)
        except RevisionMismatch:
            pass  # another call noted it meanwhile, or the key went: nothing to note

    # ------------------------------------------------------------ API keys, as their owners see them
    async def list_keys(self, session: Session) -> list[dict[str, Any]]:
        """The caller's keys; an admin's: everyone's.  Never a key itself: its id, user and times."""
        keys = []
        for entry in await self.store.list("apikeys/"):
            record = await self._open(entry.key, entry.value)
            if record is None:
                continue
            if record.get("user") != session.user.name and not session.user.admin:
                continue
            digest = entry.key.rsplit("/", 1)[1]
            keys.append({"id": digest[:KEY_ID_LENGTH], "user": record.get("user", ""),
                         "created_at": record.get("created_at", ""), "last_used_at": record.get("last_used_at", ""),
                         "expires_at": float(record.get("expires_at", 0)), "current": digest == session.key_digest})
        return sorted(keys, key=lambda k: (k["user"], k["created_at"], k["id"]))

    async def delete_key(self, session: Session, key_id: str) -> str:
        """Revoke one key by its id (yours; an admin: anyone's).  Returns its user."""
        if not isinstance(key_id, str) or len(key_id) < 8 or any(c not in "0123456789abcdef" for c in key_id):
            raise InvalidArgument(f"{key_id!r} is not an API key id (as gateway get apikeys shows it)")
        matches = []
        for entry in await self.store.list("apikeys/"):
            if entry.key.rsplit("/", 1)[1].startswith(key_id):
                record = await self._open(entry.key, entry.value)
                if record is not None:
                    matches.append((entry, record))
        visible = [(e, r) for e, r in matches if session.user.admin or r.get("user") == session.user.name]
        if not visible:
            raise NotFound(f"API key {key_id} not found")
        if len(visible) > 1:
            raise InvalidArgument(f"API key id {key_id} is ambiguous: give more of it")
        entry, record = visible[0]
        await self.store.delete(entry.key)
        return record.get("user", "")

    async def logout(self, session: Session) -> None:
        await self.store.delete(f"apikeys/{session.key_digest}")

    async def revoke_keys(self, name: str) -> int:
        count = 0
        for entry in await self.store.list("apikeys/"):
            try:
                user = json.loads(entry.value).get("user")  # trusted or not: a key of this user goes
            except (ValueError, AttributeError):
                continue
            if user == name:
                await self.store.delete(entry.key)
                count += 1
        return count

    @staticmethod
    def require_admin(session: Session) -> None:
        if not session.user.admin:
            raise PermissionDenied(f"{session.user.name} is not an admin: user management needs an admin")

    async def lock_of(self, name: str) -> str:
        """Until when `name` may not log in (ISO time), or ""."""
        return await self.throttle.locked_until(name)
