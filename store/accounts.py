"""The analyst console's accounts: users with passwords and roles, API tokens for scripts,
login sessions, and login throttling.

* **Users** (``P users``, ``P user:<name>``) have a role of :data:`ROLES` (ordered: a viewer
  reads; an analyst also reports, decides and sends; an admin also manages users and the
  configuration; :func:`role_allows`) and a password kept only as an Argon2id hash
  (argon2-cffi's :class:`~argon2.PasswordHasher`; rehashed at the next login when its
  parameters change). A disabled user cannot log in and loses every session at once, as a
  user whose password is reset does.
* **API tokens** (``P tokens``, ``P token:<sha256>``) are random secrets ``hlt_...`` shown
  once, when created; Redis keeps their SHA-256 only. A revoked token's name may be reused.
* **Sessions** (``P session:<sha256>``, ``P user:<name>:sessions``) are server-side: the
  browser holds a random token, Redis its SHA-256 with the user, a CSRF token and the times.
  A session ends after ``idle`` seconds without a request (the key's TTL, and
  ``last_seen``, which the clock decides) and ``absolute`` seconds after it began. The role
  is read from the user on every request, so a changed role applies at once.
* **Throttling** (``P login:fail:user:<name>``, ``P login:fail:addr:<address>``): counters of
  failed logins that expire :data:`FAILURE_WINDOW` seconds after the first failure;
  :data:`MAX_FAILURES_PER_USER` for a name (existing or not), or
  :data:`MAX_FAILURES_PER_ADDRESS` from one address, refuse further attempts until then.

Every change to a user or a token is one event in ``P audit`` (``notice`` is ``user:NAME`` or
``token:NAME``, ``status`` the role) with the actor who made it; never a password, a hash or
a secret. Logins are audited by the console. Every time stored comes from the store's clock;
the TTLs (idle sessions, failure windows) are Redis's, in real time.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, cast

import redis
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from store.audit import append_event
from store.base import Clock, RedisStore, decode_hash
from store.clock import iso
from store.errors import StoreError
from store.keys import Keys
from store.text import text

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES_PER_ADDRESS",
    "MAX_FAILURES_PER_USER",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "ROLES",
    "TOKEN_PREFIX",
    "AccountCorrupt",
    "AccountError",
    "Accounts",
    "ApiToken",
    "InvalidRole",
    "InvalidTokenName",
    "InvalidUserName",
    "SessionInfo",
    "TokenExists",
    "TokenNotFound",
    "User",
    "UserDisabled",
    "UserExists",
    "UserNotFound",
    "WeakPassword",
    "check_password",
    "role_allows",
    "validate_role",
    "validate_token_name",
    "validate_user_name",
]

#: The roles, from least to most allowed.
ROLES: Final = ("viewer", "analyst", "admin")
#: Fewest and most characters of a password.
MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024
#: Every API token secret starts with this.
TOKEN_PREFIX: Final = "hlt_"  # noqa: S105 - a prefix, not a secret
#: Failed logins (within :data:`FAILURE_WINDOW`) after which a name, or an address, is refused.
MAX_FAILURES_PER_USER: Final = 5
MAX_FAILURES_PER_ADDRESS: Final = 20
#: Seconds a failure counter lives, from the first failure it counts.
FAILURE_WINDOW: Final = 900.0
#: Seconds between two writes of a token's ``last_used``.
LAST_USED_EVERY: Final = 60.0
#: Longest session token or API token secret looked up (anything longer is no token of ours).
_MAX_SECRET: Final = 256

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# What a failure counter's key holds as it is; anything else is hashed (``~`` + SHA-256, and
# ``~`` never appears in the first form, so the two cannot collide).
_COUNTER_ID_RE = re.compile(r"[A-Za-z0-9._@:%\[\]-]{1,128}")
# A password nobody knows (random per process), hashed per hasher parameters for
# :meth:`Accounts.verify_password`.
_DUMMY_PASSWORD: Final = secrets.token_urlsafe(32)

# KEYS: user, users. ARGV: name, then the user's fields (name, value, ...).
# Returns 1 when added, 0 when the user exists already.
_ADD_USER = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: a hash. ARGV: field, value, [expected]. Sets the field if the hash exists (and, with
# ``expected``, if the field holds it); returns the field's old value ('' when unset), or
# false when nothing was set.
_SET_IF = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return false
end
local old = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if ARGV[3] and old ~= ARGV[3] then
    return false
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old
"""

# KEYS: session. ARGV: last_seen, TTL in milliseconds. Touches a session that still exists
# (never recreates one that was ended meanwhile); returns 1 if it did.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the counters to count a failure in. ARGV: window in milliseconds. A counter's window
# starts at its first failure: later failures do not extend it.
_FAIL = """
for _, key in ipairs(KEYS) do
    redis.call('INCR', key)
    if redis.call('PTTL', key) < 0 then
        redis.call('PEXPIRE', key, ARGV[1])
    end
end
return 1
"""


# -- errors ----------------------------------------------------------------------------------


class AccountError(StoreError, ValueError):
    """A user, token or password is not acceptable as given (bad input: the CLI exits 2)."""


class UserExists(AccountError):
    """A user of that name exists already."""


class UserNotFound(AccountError):
    """No user has that name."""


class UserDisabled(AccountError):
    """The user is disabled (no session can be created for them)."""


class InvalidUserName(AccountError):
    """The name is not 1-64 letters, digits or ``._-@`` starting with a letter or digit."""


class InvalidTokenName(InvalidUserName):
    """A token name breaks the rule of user names."""


class InvalidRole(AccountError):
    """The role is none of :data:`ROLES`."""


class WeakPassword(AccountError):
    """The password is shorter than :data:`MIN_PASSWORD` (or longer than :data:`MAX_PASSWORD`)
    characters."""


class TokenExists(AccountError):
    """A token of that name exists and is not revoked."""


class TokenNotFound(AccountError):
    """No token has that name."""


class AccountCorrupt(StoreError):
    """A user's or token's record in Redis cannot be read (names it and the field)."""


# -- validation ------------------------------------------------------------------------------


def validate_user_name(name: str) -> str:
    """Return ``name`` if it is a valid user name, else raise :class:`InvalidUserName`."""
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidUserName(
            f"invalid user name {name!r}: use 1-64 of A-Z a-z 0-9 . _ - @ starting alphanumeric"
        )
    return name


def validate_token_name(name: str) -> str:
    """Return ``name`` if it is a valid token name (as user names), else raise
    :class:`InvalidTokenName`."""
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidTokenName(
            f"invalid token name {name!r}: use 1-64 of A-Z a-z 0-9 . _ - @ starting alphanumeric"
        )
    return name


def validate_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise :class:`InvalidRole`."""
    if role not in ROLES:
        raise InvalidRole(f"invalid role {role!r}: expected one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    """Return ``password`` if it is long enough (and not absurdly long), else raise
    :class:`WeakPassword`. The message never contains the password."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password is too long: use at most {MAX_PASSWORD} characters")
    return password


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what needs ``needed`` (a role allows what every lesser one
    does). An unknown ``role`` allows nothing; an unknown ``needed`` is a programming error
    (:class:`InvalidRole`)."""
    validate_role(needed)
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _counter_id(value: str) -> str:
    """What a failure counter's key names: ``value``, or its hash when it has characters (or
    a length) that do not belong in a key name."""
    if _COUNTER_ID_RE.fullmatch(value) is not None:
        return value
    return "~" + _sha256(value)


@functools.lru_cache(maxsize=8)
def _dummy_hash(
    time_cost: int, memory_cost: int, parallelism: int, hash_len: int, salt_len: int, kind: Type
) -> str:
    """A hash of a password nobody has, made with the given hasher parameters (once per
    process), so checking a password against it takes as long as against a user's hash."""
    hasher = PasswordHasher(time_cost, memory_cost, parallelism, hash_len, salt_len, type=kind)
    return hasher.hash(_DUMMY_PASSWORD)


# -- records ---------------------------------------------------------------------------------


def _opt_time(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


@dataclass(frozen=True, slots=True)
class User:
    """A console user, without the password hash."""

    name: str
    role: str
    created: float
    disabled: bool
    password_changed: float

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created": iso(self.created),
            "password_changed": iso(self.password_changed),
        }


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token, without its secret (``revoked`` and ``last_used``: None when not)."""

    name: str
    role: str
    created: float
    revoked: float | None
    last_used: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "created": iso(self.created),
            "revoked": _opt_time(self.revoked),
            "last_used": _opt_time(self.last_used),
        }


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session: its user, the user's current role, its CSRF token and times."""

    user: str
    role: str
    csrf: str
    created: float
    last_seen: float


def _float(fields: Mapping[str, str], name: str, what: str) -> float:
    try:
        return float(fields[name])
    except (KeyError, ValueError):
        raise AccountCorrupt(f"{what}'s record is corrupt: field {name!r}") from None


def _opt_float(fields: Mapping[str, str], name: str, what: str) -> float | None:
    return _float(fields, name, what) if fields.get(name) else None


def _user(name: str, fields: Mapping[str, str]) -> User:
    what = f"user {name!r}"
    return User(
        name=name,
        role=fields.get("role", ""),
        created=_float(fields, "created", what),
        disabled=fields.get("disabled") == "1",
        password_changed=_float(fields, "password_changed", what),
    )


def _token(fields: Mapping[str, str]) -> ApiToken:
    name = fields.get("name", "")
    what = f"token {name!r}"
    return ApiToken(
        name=name,
        role=fields.get("role", ""),
        created=_float(fields, "created", what),
        revoked=_opt_float(fields, "revoked", what),
        last_used=_opt_float(fields, "last_used", what),
    )


# -- the store -------------------------------------------------------------------------------


class Accounts(RedisStore):
    """Users, API tokens, sessions and login throttling of the analyst console."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "add_user": _ADD_USER,
        "set_if": _SET_IF,
        "touch": _TOUCH,
        "fail": _FAIL,
    }

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        clock: Clock = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        super().__init__(client, keys, clock=clock)
        self.hasher = PasswordHasher() if hasher is None else hasher

    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, *, actor: str) -> User:
        """Add a user (enabled) with a role and a password (kept as an Argon2id hash only).

        Raises:
            InvalidUserName, InvalidRole, WeakPassword: as their names say.
            UserExists: a user of that name exists already.
        """
        validate_user_name(name)
        validate_role(role)
        check_password(password)
        now = self.clock()
        fields = {
            "role": role,
            "created": repr(now),
            "disabled": "0",
            "password_changed": repr(now),
            "hash": self.hasher.hash(password),
        }
        args = [name]
        for field, value in fields.items():
            args.extend((field, value))
        added = self.script("add_user", [self.keys.user(name), self.keys.users], args)
        if not int(added):
            raise UserExists(f"user {name!r} exists already")
        self._audit(f"user:{name}", "user_added", actor, f"role {role}", role)
        return _user(name, fields)

    def get_user(self, name: str) -> User:
        """The user ``name`` (:class:`UserNotFound` if there is none)."""
        fields = self.read_hash(self.keys.user(name)) if _NAME_RE.fullmatch(name) else {}
        if not fields:
            raise UserNotFound(f"no user {name!r}")
        return _user(name, fields)

    def users(self) -> list[User]:
        """Every user, by name."""
        names = sorted(text(n) for n in cast("set[bytes]", self.client.smembers(self.keys.users)))
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.user(name))
            replies = cast("list[dict[bytes, bytes]]", pipe.execute())
        return [
            _user(name, decode_hash(raw)) for name, raw in zip(names, replies, strict=True) if raw
        ]

    def disable_user(self, name: str, *, actor: str) -> User:
        """Disable a user: no login, and every session of theirs ends now."""
        self._change_ending_sessions(name, {"disabled": "1"})
        user = self.get_user(name)
        self._audit(f"user:{name}", "user_disabled", actor, "sessions ended", user.role)
        return user

    def enable_user(self, name: str, *, actor: str) -> User:
        """Let a disabled user log in again (with the password they had)."""
        self._set_user_field(name, "disabled", "0")
        user = self.get_user(name)
        self._audit(f"user:{name}", "user_enabled", actor, "", user.role)
        return user

    def reset_password(self, name: str, password: str, *, actor: str) -> User:
        """Give a user a new password; every session of theirs ends now."""
        validate_user_name(name)
        check_password(password)
        fields = {"hash": self.hasher.hash(password), "password_changed": repr(self.clock())}
        self._change_ending_sessions(name, fields)
        user = self.get_user(name)
        self._audit(f"user:{name}", "user_password_reset", actor, "sessions ended", user.role)
        return user

    def set_role(self, name: str, role: str, *, actor: str) -> User:
        """Give a user another role (it applies to their sessions at their next request)."""
        validate_role(role)
        old = self._set_user_field(name, "role", role)
        user = self.get_user(name)
        self._audit(f"user:{name}", "user_role_set", actor, f"role {old} -> {role}", role)
        return user

    def verify_password(self, name: str, password: str) -> User | None:
        """The user, if ``name`` is an enabled user and ``password`` is theirs; else None.

        An unknown name costs one Argon2 verification too (of a hash nobody's password
        matches), so the time taken does not tell which names exist. A hash made with other
        parameters than the hasher's is replaced by a new one on success."""
        dummy = _dummy_hash(
            self.hasher.time_cost,
            self.hasher.memory_cost,
            self.hasher.parallelism,
            self.hasher.hash_len,
            self.hasher.salt_len,
            self.hasher.type,
        )
        if len(password) > MAX_PASSWORD:
            return None  # no password is this long; not worth hashing
        fields = self.read_hash(self.keys.user(name)) if _NAME_RE.fullmatch(name) else {}
        stored = fields.get("hash", "")
        try:
            self.hasher.verify(stored or dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        if not stored:
            return None  # cannot happen: nobody knows the dummy's password
        user = _user(name, fields)
        if user.disabled:
            return None
        if self.hasher.check_needs_rehash(stored):
            # Only if the hash is still the one verified (no reset happened meanwhile).
            self.script(
                "set_if", [self.keys.user(name)], ["hash", self.hasher.hash(password), stored]
            )
        return user

    # -- API tokens --------------------------------------------------------------------------

    def create_token(self, name: str, role: str, *, actor: str) -> tuple[ApiToken, str]:
        """A new API token and its secret (``hlt_...``), which is shown now and never again.

        Raises:
            InvalidTokenName, InvalidRole: as their names say.
            TokenExists: a token of that name exists and is not revoked.
        """
        validate_token_name(name)
        validate_role(role)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        # The secret is 256 random bits: a fast hash cannot be reversed or brute-forced, and
        # every API request looks it up, so SHA-256 (not Argon2) is the right hash here.
        digest = _sha256(secret)
        now = self.clock()
        fields: dict[Any, Any] = {"name": name, "role": role, "created": repr(now)}
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.keys.tokens)  # type: ignore[no-untyped-call]
                    old = cast("bytes | None", pipe.hget(self.keys.tokens, name))
                    old_key = None if old is None else self.keys.token(text(old))
                    if old_key is not None:
                        earlier = decode_hash(cast("dict[bytes, bytes]", pipe.hgetall(old_key)))
                        if earlier and not earlier.get("revoked"):
                            raise TokenExists(f"token {name!r} exists already")
                    pipe.multi()
                    if old_key is not None:
                        pipe.delete(old_key)  # a revoked token's record: its name is reused
                    pipe.hset(self.keys.tokens, name, digest)
                    pipe.hset(self.keys.token(digest), mapping=fields)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self._audit(f"token:{name}", "token_created", actor, f"role {role}", role)
        return ApiToken(name, role, now, None, None), secret

    def tokens(self) -> list[ApiToken]:
        """Every token (revoked ones too), by name."""
        index = self.read_hash(self.keys.tokens)
        names = sorted(index)
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.token(index[name]))
            replies = cast("list[dict[bytes, bytes]]", pipe.execute())
        return [_token(decode_hash(raw)) for raw in replies if raw]

    def revoke_token(self, name: str, *, actor: str) -> ApiToken:
        """Revoke a token: it authenticates nothing from now on. Revoking a revoked token
        changes nothing (and records no event).

        Raises:
            TokenNotFound: no token has that name.
        """
        digest = cast("bytes | None", self.client.hget(self.keys.tokens, name))
        if digest is None:
            raise TokenNotFound(f"no token {name!r}")
        key = self.keys.token(text(digest))
        old = self.script("set_if", [key], ["revoked", repr(self.clock()), ""])
        fields = self.read_hash(key)
        if not fields:  # its name was reused meanwhile: the record is gone
            raise TokenNotFound(f"no token {name!r}")
        token = _token(fields)
        if old is not None:
            self._audit(f"token:{name}", "token_revoked", actor, "", token.role)
        return token

    def authenticate_token(self, secret: str) -> ApiToken | None:
        """The token whose secret this is, if it exists and is not revoked; else None.
        Records when it was last used (at most once every :data:`LAST_USED_EVERY` seconds)."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_SECRET:
            return None
        key = self.keys.token(_sha256(secret))
        fields = self.read_hash(key)
        if not fields:
            return None
        token = _token(fields)
        if not token.active:
            return None
        now = self.clock()
        if token.last_used is None or now - token.last_used >= LAST_USED_EVERY:
            self.script("set_if", [key], ["last_used", repr(now)])
            token = ApiToken(token.name, token.role, token.created, None, now)
        return token

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, user: str, *, idle: float, absolute: float) -> tuple[str, SessionInfo]:
        """A new session of ``user`` (after they logged in): its token, for the cookie, and
        what it holds. Redis keeps only the token's SHA-256, for ``idle`` seconds from now.

        Raises:
            UserNotFound: no such user.
            UserDisabled: the user is disabled.
        """
        if idle <= 0 or absolute <= 0:
            raise ValueError("session timeouts must be positive")
        token = secrets.token_urlsafe(32)
        digest = _sha256(token)
        csrf = secrets.token_urlsafe(32)
        now = self.clock()
        if _NAME_RE.fullmatch(user) is None:
            raise UserNotFound(f"no user {user!r}")
        user_key, set_key = self.keys.user(user), self.keys.user_sessions(user)
        self._forget_ended_sessions(user)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # Watched: a user disabled (or given a new password) meanwhile ends this
                    # session with the others, or gets none.
                    pipe.watch(user_key, set_key)  # type: ignore[no-untyped-call]
                    fields = decode_hash(cast("dict[bytes, bytes]", pipe.hgetall(user_key)))
                    if not fields:
                        raise UserNotFound(f"no user {user!r}")
                    account = _user(user, fields)
                    if account.disabled:
                        raise UserDisabled(f"user {user!r} is disabled")
                    pipe.multi()
                    session: dict[Any, Any] = {
                        "user": user,
                        "csrf": csrf,
                        "created": repr(now),
                        "last_seen": repr(now),
                    }
                    pipe.hset(self.keys.session(digest), mapping=session)
                    pipe.pexpire(self.keys.session(digest), _ms(min(idle, absolute)))
                    pipe.sadd(set_key, digest)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        return token, SessionInfo(user, account.role, csrf, now, now)

    def get_session(self, token: str, *, idle: float, absolute: float) -> SessionInfo | None:
        """The session of this token, if it is live: not ended, used within ``idle``
        seconds, begun within ``absolute`` seconds, and its user exists and is enabled. A
        live session is touched (``last_seen``; its TTL runs ``idle`` seconds again, never
        past its absolute end); any other is ended, and None returned."""
        if not token or len(token) > _MAX_SECRET:
            return None
        digest = _sha256(token)
        key = self.keys.session(digest)
        fields = self.read_hash(key)
        if not fields:
            return None
        now = self.clock()
        name = fields.get("user", "")
        try:
            created = float(fields["created"])
            last_seen = float(fields["last_seen"])
            user = self.get_user(name)
        except (KeyError, ValueError, AccountError, AccountCorrupt):
            user = None
        if (
            user is None
            or user.disabled
            or now - last_seen >= idle
            or now - created >= absolute
            or not fields.get("csrf")
        ):
            self._end(digest, name)
            return None
        remaining = min(idle, created + absolute - now)
        if not int(self.script("touch", [key], [repr(now), _ms(remaining)])):
            return None
        return SessionInfo(user.name, user.role, fields["csrf"], created, now)

    def end_session(self, token: str) -> None:
        """End the session of this token (logout); nothing if there is none."""
        if not token or len(token) > _MAX_SECRET:
            return
        digest = _sha256(token)
        raw = cast("bytes | None", self.client.hget(self.keys.session(digest), "user"))
        self._end(digest, None if raw is None else text(raw))

    def end_sessions_of(self, user: str) -> int:
        """End every session of ``user``; returns how many were live."""
        return self._change_ending_sessions(user, None)

    # -- login throttling --------------------------------------------------------------------

    def login_allowed(self, user: str, address: str) -> bool:
        """Whether a login as ``user`` from ``address`` may be tried now: fewer than
        :data:`MAX_FAILURES_PER_USER` failures for the name and fewer than
        :data:`MAX_FAILURES_PER_ADDRESS` from the address in their windows."""
        raw = cast(
            "list[bytes | None]",
            self.client.mget(
                self.keys.login_failures_user(_counter_id(user)),
                self.keys.login_failures_address(_counter_id(address)),
            ),
        )
        by_user, by_address = (int(v) if v is not None else 0 for v in raw)
        return by_user < MAX_FAILURES_PER_USER and by_address < MAX_FAILURES_PER_ADDRESS

    def record_login_failure(self, user: str, address: str) -> None:
        """Count a failed login for the name (whether a user has it or not) and the address."""
        self.script(
            "fail",
            [
                self.keys.login_failures_user(_counter_id(user)),
                self.keys.login_failures_address(_counter_id(address)),
            ],
            [_ms(FAILURE_WINDOW)],
        )

    def clear_login_failures(self, user: str) -> None:
        """Forget the name's failures (after a successful login). The address's count stays:
        one account's success must not reset an address that tries many."""
        self.client.delete(self.keys.login_failures_user(_counter_id(user)))

    # -- helpers -----------------------------------------------------------------------------

    def _audit(self, incident: str, event: str, actor: str, detail: str, role: str) -> None:
        append_event(
            self.client,
            self.keys,
            incident=incident,
            event=event,
            actor=actor,
            detail=detail,
            status=role,
            now=self.clock(),
        )

    def _set_user_field(self, name: str, field: str, value: str) -> str:
        """Set one field of an existing user; returns its old value."""
        validate_user_name(name)
        old = self.script("set_if", [self.keys.user(name)], [field, value])
        if old is None:
            raise UserNotFound(f"no user {name!r}")
        return text(old)

    def _change_ending_sessions(self, name: str, fields: Mapping[str, str] | None) -> int:
        """End every session of user ``name`` and, in the same transaction, set ``fields``
        of the user (who must exist; with None: nothing set, and nobody need exist).
        Returns how many sessions were live."""
        if fields is not None:
            validate_user_name(name)
        elif _NAME_RE.fullmatch(name) is None:
            return 0
        user_key, set_key = self.keys.user(name), self.keys.user_sessions(name)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(user_key, set_key)  # type: ignore[no-untyped-call]
                    if fields is not None and not pipe.exists(user_key):
                        raise UserNotFound(f"no user {name!r}")
                    ids = [text(m) for m in cast("set[bytes]", pipe.smembers(set_key))]
                    pipe.multi()
                    if fields:
                        changes: dict[Any, Any] = dict(fields)
                        pipe.hset(user_key, mapping=changes)
                    for digest in ids:
                        pipe.delete(self.keys.session(digest))
                    pipe.delete(set_key)
                    replies = cast("list[int]", pipe.execute())
                    break
                except redis.WatchError:
                    continue
        start = 1 if fields else 0
        return sum(int(n) for n in replies[start : start + len(ids)])

    def _end(self, digest: str, user: str | None) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.session(digest))
            if user and _NAME_RE.fullmatch(user):
                pipe.srem(self.keys.user_sessions(user), digest)
            pipe.execute()

    def _forget_ended_sessions(self, user: str) -> None:
        """Drop from the user's set the sessions whose key expired (idle)."""
        set_key = self.keys.user_sessions(user)
        ids = [text(m) for m in cast("set[bytes]", self.client.smembers(set_key))]
        if not ids:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for digest in ids:
                pipe.exists(self.keys.session(digest))
            alive = cast("list[int]", pipe.execute())
        gone = [digest for digest, n in zip(ids, alive, strict=True) if not n]
        if gone:
            self.client.srem(set_key, *gone)


def _ms(seconds: float) -> int:
    """A TTL in whole milliseconds, at least one."""
    return max(1, int(seconds * 1000))
