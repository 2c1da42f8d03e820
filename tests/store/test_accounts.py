"""The console's accounts (store.accounts) against a real redis-server: Argon2id hashes and no
plaintext in Redis, password checks, sessions with a settable clock, API tokens, login
throttling, the audit events, and the one-line refusals of bad input."""

from __future__ import annotations

import hashlib
from typing import Any, Literal, cast

import pytest
import redis
from argon2 import PasswordHasher, Type

from store.accounts import (
    FAILURE_WINDOW,
    MAX_FAILURES_PER_ADDRESS,
    MAX_FAILURES_PER_USER,
    AccountError,
    Accounts,
    ApiToken,
    InvalidRole,
    InvalidTokenName,
    InvalidUserName,
    TokenExists,
    TokenNotFound,
    User,
    UserDisabled,
    UserExists,
    UserNotFound,
    WeakPassword,
    role_allows,
)
from store.clock import iso
from store.errors import StoreError
from store.keys import Keys
from tests.helpers import CLOCK_START, Clock

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another long secret"
ADMIN = "admin@root"
IDLE = 1800.0
ABSOLUTE = 12 * 3600.0


def cheap_hasher(time_cost: int = 1) -> PasswordHasher:
    """Argon2id with the least work: the tests check what is stored, not the cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


class CountingHasher(PasswordHasher):
    """A cheap hasher that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


@pytest.fixture
def accounts(redis_client: redis.Redis, keys: Keys, clock: Clock) -> Accounts:
    return Accounts(redis_client, keys, clock=clock, hasher=cheap_hasher())


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def stored_text(client: redis.Redis, prefix: str) -> str:
    """Every key under ``prefix`` and every value in it, whatever its type, as one text."""
    parts: list[str] = []
    for raw_key in cast("list[bytes]", list(client.scan_iter(match=f"{prefix}*"))):
        key = raw_key.decode()
        parts.append(key)
        kind = cast("bytes", client.type(key)).decode()
        values: list[Any]
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [x for kv in cast("dict", client.hgetall(key)).items() for x in kv]
        elif kind == "set":
            values = list(cast("set", client.smembers(key)))
        elif kind == "zset":
            values = list(cast("list", client.zrange(key, 0, -1)))
        elif kind == "list":
            values = list(cast("list", client.lrange(key, 0, -1)))
        elif kind == "stream":
            values = [
                x for _, data in cast("list", client.xrange(key)) for kv in data.items() for x in kv
            ]
        else:
            pytest.fail(f"key {key} has an unexpected type {kind}")
        parts.extend(v.decode(errors="replace") for v in values if v is not None)
    return "\n".join(parts)


def audit_events(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    rows = cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(keys.audit))
    return [{k.decode(): v.decode() for k, v in data.items()} for _, data in rows]


# -- users and passwords ---------------------------------------------------------------------


def test_a_password_is_kept_as_an_argon2id_hash_and_nowhere_in_plaintext(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys, redis_prefix: str
) -> None:
    user = accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)

    assert user == User("alice", "analyst", CLOCK_START, False, CLOCK_START)
    stored = cast("bytes", redis_client.hget(keys.user("alice"), "hash")).decode()
    assert stored.startswith("$argon2id$")
    assert cheap_hasher().verify(stored, PASSWORD)
    everything = stored_text(redis_client, redis_prefix)
    assert PASSWORD not in everything
    assert "$argon2" in everything  # the scan does read the hash
    assert user.as_json() == {
        "name": "alice",
        "role": "analyst",
        "disabled": False,
        "created": iso(CLOCK_START),
        "password_changed": iso(CLOCK_START),
    }


def test_the_default_hasher_is_argon2id(redis_client: redis.Redis, keys: Keys) -> None:
    accounts = Accounts(redis_client, keys)
    assert accounts.hasher.type is Type.ID
    accounts.add_user("dora", "viewer", PASSWORD, actor=ADMIN)
    stored = cast("bytes", redis_client.hget(keys.user("dora"), "hash")).decode()
    assert stored.startswith("$argon2id$")
    assert accounts.verify_password("dora", PASSWORD) is not None


def test_verify_password_accepts_only_an_enabled_user_with_their_password(
    accounts: Accounts,
) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)

    verified = accounts.verify_password("alice", PASSWORD)
    assert verified is not None and verified.name == "alice"
    assert accounts.verify_password("alice", OTHER_PASSWORD) is None
    assert accounts.verify_password("alice", PASSWORD.upper()) is None
    assert accounts.verify_password("alice", "") is None
    assert accounts.verify_password("bob", PASSWORD) is None
    assert accounts.verify_password("not a name!", PASSWORD) is None

    accounts.disable_user("alice", actor=ADMIN)
    assert accounts.verify_password("alice", PASSWORD) is None
    accounts.enable_user("alice", actor=ADMIN)
    assert accounts.verify_password("alice", PASSWORD) is not None


def test_an_unknown_name_costs_one_argon2_verification_like_a_known_one(
    redis_client: redis.Redis, keys: Keys
) -> None:
    hasher = CountingHasher()
    accounts = Accounts(redis_client, keys, hasher=hasher)
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    for name, password in [
        ("alice", PASSWORD),
        ("alice", OTHER_PASSWORD),
        ("nobody", PASSWORD),
        ("not a name!", PASSWORD),
    ]:
        before = hasher.verified
        accounts.verify_password(name, password)
        assert hasher.verified == before + 1, name


def test_a_hash_made_with_old_parameters_is_replaced_at_the_next_login(
    redis_client: redis.Redis, keys: Keys, clock: Clock
) -> None:
    old = Accounts(redis_client, keys, clock=clock, hasher=cheap_hasher(time_cost=1))
    old.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    first = cast("bytes", redis_client.hget(keys.user("alice"), "hash")).decode()
    assert "t=1" in first
    new = Accounts(redis_client, keys, clock=clock, hasher=cheap_hasher(time_cost=2))

    clock.advance(100)
    assert new.verify_password("alice", OTHER_PASSWORD) is None
    assert cast("bytes", redis_client.hget(keys.user("alice"), "hash")).decode() == first
    assert new.verify_password("alice", PASSWORD) is not None

    second = cast("bytes", redis_client.hget(keys.user("alice"), "hash")).decode()
    assert second.startswith("$argon2id$") and "t=2" in second
    assert new.verify_password("alice", PASSWORD) is not None
    assert new.get_user("alice").password_changed == CLOCK_START  # not a password change


@pytest.mark.parametrize(
    "name", ["", "-alice", ".alice", "a" * 65, "al ice", "alice:x", "ålice", "alice\n", "a/b"]
)
def test_a_bad_user_name_is_refused_with_one_line(
    accounts: Accounts, name: str, redis_client: redis.Redis, keys: Keys
) -> None:
    with pytest.raises(InvalidUserName) as caught:
        accounts.add_user(name, "viewer", PASSWORD, actor=ADMIN)
    message = str(caught.value)
    assert "\n" not in message.replace(repr(name), "") and "user name" in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, StoreError)
    assert redis_client.scard(keys.users) == 0


def test_good_user_names(accounts: Accounts) -> None:
    for name in ["a", "alice.smith", "bob_2", "c-d", "e@example.org", "A" * 64, "9lives"]:
        assert accounts.add_user(name, "viewer", PASSWORD, actor=ADMIN).name == name
    assert [u.name for u in accounts.users()] == sorted(
        ["a", "alice.smith", "bob_2", "c-d", "e@example.org", "A" * 64, "9lives"]
    )


@pytest.mark.parametrize("role", ["root", "Admin", "", "viewer "])
def test_a_bad_role_is_refused(accounts: Accounts, role: str) -> None:
    with pytest.raises(InvalidRole, match="invalid role"):
        accounts.add_user("alice", role, PASSWORD, actor=ADMIN)
    with pytest.raises(InvalidRole):
        accounts.create_token("ci", role, actor=ADMIN)
    accounts.add_user("alice", "viewer", PASSWORD, actor=ADMIN)
    with pytest.raises(InvalidRole):
        accounts.set_role("alice", role, actor=ADMIN)
    assert accounts.get_user("alice").role == "viewer"


@pytest.mark.parametrize("password", ["", "Sh0rt!pw", "x" * 11, "x" * 1025])
def test_a_weak_or_absurd_password_is_refused_without_being_repeated(
    accounts: Accounts, password: str
) -> None:
    with pytest.raises(WeakPassword) as caught:
        accounts.add_user("alice", "viewer", password, actor=ADMIN)
    assert password not in str(caught.value) or not password
    with pytest.raises(UserNotFound):
        accounts.get_user("alice")
    accounts.add_user("alice", "viewer", PASSWORD, actor=ADMIN)
    with pytest.raises(WeakPassword):
        accounts.reset_password("alice", password, actor=ADMIN)
    assert accounts.verify_password("alice", PASSWORD) is not None


def test_twelve_characters_are_enough(accounts: Accounts) -> None:
    accounts.add_user("alice", "viewer", "x" * 12, actor=ADMIN)
    assert accounts.verify_password("alice", "x" * 12) is not None


def test_a_user_is_added_once(accounts: Accounts) -> None:
    accounts.add_user("alice", "viewer", PASSWORD, actor=ADMIN)
    with pytest.raises(UserExists, match=r"^user 'alice' exists already$"):
        accounts.add_user("alice", "admin", OTHER_PASSWORD, actor=ADMIN)
    assert accounts.get_user("alice").role == "viewer"
    assert accounts.verify_password("alice", PASSWORD) is not None


def test_changes_to_an_unknown_user_are_refused(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound, match=r"^no user 'ghost'$"):
        accounts.get_user("ghost")
    for change in (
        lambda: accounts.disable_user("ghost", actor=ADMIN),
        lambda: accounts.enable_user("ghost", actor=ADMIN),
        lambda: accounts.reset_password("ghost", PASSWORD, actor=ADMIN),
        lambda: accounts.set_role("ghost", "admin", actor=ADMIN),
    ):
        with pytest.raises(UserNotFound):
            change()
    assert accounts.users() == []


def test_reset_password_and_set_role(accounts: Accounts, clock: Clock) -> None:
    accounts.add_user("alice", "viewer", PASSWORD, actor=ADMIN)
    clock.advance(60)
    user = accounts.reset_password("alice", OTHER_PASSWORD, actor=ADMIN)
    assert user.password_changed == CLOCK_START + 60 and user.created == CLOCK_START
    assert accounts.verify_password("alice", PASSWORD) is None
    assert accounts.verify_password("alice", OTHER_PASSWORD) is not None
    assert accounts.set_role("alice", "admin", actor=ADMIN).role == "admin"
    assert accounts.get_user("alice").role == "admin"


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "analyst", False),
        ("analyst", "viewer", True),
        ("analyst", "analyst", True),
        ("analyst", "admin", False),
        ("admin", "viewer", True),
        ("admin", "admin", True),
        ("root", "viewer", False),
        ("", "viewer", False),
    ],
)
def test_roles_are_ordered(role: str, needed: str, allowed: bool) -> None:
    assert role_allows(role, needed) is allowed


def test_role_allows_refuses_an_unknown_needed_role() -> None:
    with pytest.raises(InvalidRole):
        role_allows("admin", "superuser")


# -- sessions --------------------------------------------------------------------------------


def test_a_session_is_stored_under_the_hash_of_its_token(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys, redis_prefix: str
) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    token, info = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)

    assert len(token) >= 40 and len(info.csrf) >= 40 and token != info.csrf
    assert (info.user, info.role, info.created, info.last_seen) == (
        "alice",
        "analyst",
        CLOCK_START,
        CLOCK_START,
    )
    key = keys.session(sha256(token))
    assert redis_client.exists(key)
    assert 0 < redis_client.pttl(key) <= IDLE * 1000
    assert redis_client.smembers(keys.user_sessions("alice")) == {sha256(token).encode()}
    assert token not in stored_text(redis_client, redis_prefix)
    assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) == info
    assert accounts.get_session(token + "x", idle=IDLE, absolute=ABSOLUTE) is None
    assert accounts.get_session("", idle=IDLE, absolute=ABSOLUTE) is None


def test_each_session_has_its_own_token_and_csrf_token(accounts: Accounts) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    first = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    second = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    assert first[0] != second[0] and first[1].csrf != second[1].csrf


def test_a_session_ends_after_idle_seconds_without_a_request(
    accounts: Accounts, clock: Clock, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    token, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)

    for _ in range(3):  # each request keeps it alive for another IDLE seconds
        clock.advance(IDLE - 1)
        info = accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE)
        assert info is not None and info.last_seen == clock.now
        stored = cast("bytes", redis_client.hget(keys.session(sha256(token)), "last_seen"))
        assert float(stored) == clock.now

    clock.advance(IDLE)  # Redis's TTL runs in real time; the stored last_seen decides here
    assert redis_client.exists(keys.session(sha256(token)))
    assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is None
    assert not redis_client.exists(keys.session(sha256(token)))
    assert redis_client.scard(keys.user_sessions("alice")) == 0


def test_a_session_ends_absolute_seconds_after_it_began_however_busy(
    accounts: Accounts, clock: Clock, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    token, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    key = keys.session(sha256(token))

    while clock.now + IDLE / 2 < CLOCK_START + ABSOLUTE:
        clock.advance(IDLE / 2)
        assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is not None
    clock.now = CLOCK_START + ABSOLUTE - 10
    assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is not None
    assert 0 < redis_client.pttl(key) <= 10_000  # never past the absolute end

    clock.now = CLOCK_START + ABSOLUTE
    assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is None
    assert not redis_client.exists(key)


def test_a_session_reads_the_users_role_and_state_live(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "viewer", PASSWORD, actor=ADMIN)
    token, info = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    assert info.role == "viewer"

    accounts.set_role("alice", "admin", actor=ADMIN)
    live = accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE)
    assert live is not None and live.role == "admin"

    redis_client.hset(keys.user("alice"), "disabled", "1")  # however it came to be disabled
    assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is None


def test_a_session_of_a_user_who_is_gone_is_no_session(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "viewer", PASSWORD, actor=ADMIN)
    token, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    redis_client.delete(keys.user("alice"))
    assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is None


@pytest.mark.parametrize("end", ["disable", "reset"])
def test_disabling_or_resetting_a_password_ends_every_session_of_the_user(
    accounts: Accounts, end: str, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    accounts.add_user("bob", "analyst", PASSWORD, actor=ADMIN)
    alices = [accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)[0] for _ in "ab"]
    bobs, _ = accounts.create_session("bob", idle=IDLE, absolute=ABSOLUTE)

    if end == "disable":
        accounts.disable_user("alice", actor=ADMIN)
    else:
        accounts.reset_password("alice", OTHER_PASSWORD, actor=ADMIN)

    for token in alices:
        assert not redis_client.exists(keys.session(sha256(token)))
        assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is None
    assert not redis_client.exists(keys.user_sessions("alice"))
    assert accounts.get_session(bobs, idle=IDLE, absolute=ABSOLUTE) is not None
    if end == "reset":  # a new login works at once
        token, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
        assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is not None


def test_end_session_and_end_sessions_of(accounts: Accounts, redis_client: redis.Redis) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    tokens = [accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)[0] for _ in "abc"]

    accounts.end_session(tokens[0])
    accounts.end_session(tokens[0])  # logging out twice is fine
    accounts.end_session("no such token")
    assert accounts.get_session(tokens[0], idle=IDLE, absolute=ABSOLUTE) is None
    assert accounts.get_session(tokens[1], idle=IDLE, absolute=ABSOLUTE) is not None

    assert accounts.end_sessions_of("alice") == 2
    assert accounts.end_sessions_of("alice") == 0
    assert accounts.end_sessions_of("nobody") == 0
    for token in tokens:
        assert accounts.get_session(token, idle=IDLE, absolute=ABSOLUTE) is None


def test_sessions_whose_key_expired_leave_the_users_set(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    old, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    redis_client.delete(keys.session(sha256(old)))  # as its TTL would
    new, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    assert redis_client.smembers(keys.user_sessions("alice")) == {sha256(new).encode()}


def test_no_session_for_an_unknown_or_disabled_user(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound):
        accounts.create_session("ghost", idle=IDLE, absolute=ABSOLUTE)
    accounts.add_user("alice", "analyst", PASSWORD, actor=ADMIN)
    accounts.disable_user("alice", actor=ADMIN)
    with pytest.raises(UserDisabled):
        accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)


# -- API tokens ------------------------------------------------------------------------------


def test_a_token_secret_is_shown_once_and_only_its_sha256_is_stored(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys, redis_prefix: str
) -> None:
    token, secret = accounts.create_token("ci", "analyst", actor=ADMIN)

    assert secret.startswith("hlt_") and len(secret) >= 4 + 43
    assert token == ApiToken("ci", "analyst", CLOCK_START, None, None)
    assert redis_client.hget(keys.tokens, "ci") == sha256(secret).encode()
    assert redis_client.exists(keys.token(sha256(secret)))
    everything = stored_text(redis_client, redis_prefix)
    assert secret not in everything and secret[4:] not in everything
    assert secret not in str(token.as_json()) and secret not in str(accounts.tokens())


def test_a_token_authenticates_until_it_is_revoked(
    accounts: Accounts, clock: Clock, redis_client: redis.Redis, keys: Keys
) -> None:
    _, secret = accounts.create_token("ci", "analyst", actor=ADMIN)

    clock.advance(5)
    found = accounts.authenticate_token(secret)
    assert found is not None and (found.name, found.role) == ("ci", "analyst")
    assert found.last_used == CLOCK_START + 5
    clock.advance(30)  # last_used is written at most once a minute
    assert accounts.authenticate_token(secret) is not None
    assert accounts.tokens()[0].last_used == CLOCK_START + 5
    clock.advance(31)
    assert accounts.authenticate_token(secret) is not None
    assert accounts.tokens()[0].last_used == CLOCK_START + 66

    for wrong in ["", "hlt_", secret + "x", secret[:-1], secret[4:], "hlt_" + "a" * 300]:
        assert accounts.authenticate_token(wrong) is None

    clock.advance(10)
    revoked = accounts.revoke_token("ci", actor=ADMIN)
    assert revoked.revoked == CLOCK_START + 76 and not revoked.active
    assert accounts.authenticate_token(secret) is None
    assert accounts.tokens() == [revoked]
    assert revoked.as_json()["revoked"] == iso(CLOCK_START + 76)
    clock.advance(10)
    assert accounts.revoke_token("ci", actor=ADMIN).revoked == CLOCK_START + 76  # once


def test_a_token_name_is_taken_until_the_token_is_revoked(accounts: Accounts) -> None:
    _, first = accounts.create_token("ci", "viewer", actor=ADMIN)
    with pytest.raises(TokenExists, match=r"^token 'ci' exists already$"):
        accounts.create_token("ci", "admin", actor=ADMIN)
    assert accounts.authenticate_token(first) is not None

    accounts.revoke_token("ci", actor=ADMIN)
    token, second = accounts.create_token("ci", "admin", actor=ADMIN)
    assert token.role == "admin" and second != first
    assert accounts.authenticate_token(first) is None
    again = accounts.authenticate_token(second)
    assert again is not None and again.role == "admin"
    assert [(t.name, t.role, t.active) for t in accounts.tokens()] == [("ci", "admin", True)]


def test_tokens_are_listed_by_name_and_unknown_ones_are_refused(accounts: Accounts) -> None:
    for name in ["zeta", "alpha", "mid"]:
        accounts.create_token(name, "viewer", actor=ADMIN)
    assert [t.name for t in accounts.tokens()] == ["alpha", "mid", "zeta"]
    with pytest.raises(TokenNotFound, match=r"^no token 'ghost'$"):
        accounts.revoke_token("ghost", actor=ADMIN)
    with pytest.raises(InvalidTokenName, match="invalid token name"):
        accounts.create_token("bad name", "viewer", actor=ADMIN)
    assert issubclass(TokenNotFound, AccountError) and issubclass(AccountError, ValueError)


# -- login throttling ------------------------------------------------------------------------


def test_failures_for_one_name_refuse_it_from_any_address_until_cleared(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys
) -> None:
    for failures in range(MAX_FAILURES_PER_USER):
        assert accounts.login_allowed("alice", "192.0.2.1"), failures
        accounts.record_login_failure("alice", f"192.0.2.{failures}")
    assert not accounts.login_allowed("alice", "192.0.2.1")
    assert not accounts.login_allowed("alice", "198.51.100.7")
    assert accounts.login_allowed("bob", "192.0.2.1")

    key = keys.login_failures_user("alice")
    ttl = redis_client.pttl(key)
    assert 0 < ttl <= FAILURE_WINDOW * 1000
    redis_client.pexpire(key, 60_000)  # the window began a while ago...
    accounts.record_login_failure("alice", "192.0.2.1")
    assert 0 < redis_client.pttl(key) <= 60_000  # ...and a failure does not extend it

    accounts.clear_login_failures("alice")
    assert accounts.login_allowed("alice", "192.0.2.1")


def test_names_nobody_has_are_counted_too(accounts: Accounts) -> None:
    for name in ["ghost", "x" * 300, "spaced name\n"]:
        for _ in range(MAX_FAILURES_PER_USER):
            accounts.record_login_failure(name, "2001:db8::1")
        assert not accounts.login_allowed(name, "2001:db8::2"), name


def test_failures_from_one_address_refuse_it_for_every_name(
    accounts: Accounts, redis_client: redis.Redis, keys: Keys
) -> None:
    address = "2001:db8::5"
    for n in range(MAX_FAILURES_PER_ADDRESS):
        assert accounts.login_allowed(f"user{n}", address)
        accounts.record_login_failure(f"user{n}", address)  # a new name each time
    assert not accounts.login_allowed("someone-new", address)
    assert accounts.login_allowed("someone-new", "2001:db8::6")
    accounts.clear_login_failures("user0")  # a success elsewhere does not clear an address
    assert not accounts.login_allowed("user0", address)
    ttl = redis_client.pttl(keys.login_failures_address(address))
    assert 0 < ttl <= FAILURE_WINDOW * 1000


# -- the audit trail -------------------------------------------------------------------------


def test_every_change_is_one_audit_event_with_its_actor_and_no_secret(
    accounts: Accounts, clock: Clock, redis_client: redis.Redis, keys: Keys
) -> None:
    accounts.add_user("alice", "viewer", PASSWORD, actor="admin@root")
    clock.advance(1)
    accounts.set_role("alice", "analyst", actor="admin@eve")
    accounts.reset_password("alice", OTHER_PASSWORD, actor="admin@root")
    accounts.disable_user("alice", actor="admin@root")
    accounts.enable_user("alice", actor="admin@root")
    _, secret = accounts.create_token("ci", "viewer", actor="admin@root")
    accounts.revoke_token("ci", actor="admin@eve")
    accounts.revoke_token("ci", actor="admin@eve")  # changes nothing: no event
    accounts.verify_password("alice", OTHER_PASSWORD)  # logins are the console's to audit
    token, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)

    events = audit_events(redis_client, keys)
    assert [(e["notice"], e["event"], e["actor"], e["status"]) for e in events] == [
        ("user:alice", "user_added", "admin@root", "viewer"),
        ("user:alice", "user_role_set", "admin@eve", "analyst"),
        ("user:alice", "user_password_reset", "admin@root", "analyst"),
        ("user:alice", "user_disabled", "admin@root", "analyst"),
        ("user:alice", "user_enabled", "admin@root", "analyst"),
        ("token:ci", "token_created", "admin@root", "viewer"),
        ("token:ci", "token_revoked", "admin@eve", "viewer"),
    ]
    assert events[0]["time"] == iso(CLOCK_START) and events[1]["time"] == iso(CLOCK_START + 1)
    assert events[1]["detail"] == "role viewer -> analyst"
    flat = str(events)
    for secret_text in (PASSWORD, OTHER_PASSWORD, secret, token, "$argon2", sha256(secret)):
        assert secret_text not in flat


def test_nothing_secret_is_anywhere_in_redis(
    accounts: Accounts, redis_client: redis.Redis, redis_prefix: str
) -> None:
    accounts.add_user("alice", "admin", PASSWORD, actor=ADMIN)
    accounts.reset_password("alice", OTHER_PASSWORD, actor=ADMIN)
    session, _ = accounts.create_session("alice", idle=IDLE, absolute=ABSOLUTE)
    _, secret = accounts.create_token("ci", "analyst", actor=ADMIN)
    accounts.authenticate_token(secret)
    accounts.record_login_failure("alice", "192.0.2.1")

    everything = stored_text(redis_client, redis_prefix)
    assert sha256(session) in everything and sha256(secret) in everything  # the scan works
    for secret_text in (PASSWORD, OTHER_PASSWORD, session, secret):
        assert secret_text not in everything
