"""``hotline users`` and ``hotline tokens``: the analyst console's accounts, and the API tokens
scripts use (through :class:`store.accounts.Accounts`).

``hotline users add NAME --role ROLE``     a user; the password is asked twice (hidden), or
                                           read as one line with ``--password-stdin``
``hotline users list``                     every user: role, status, created, password changed
``hotline users disable|enable NAME``      disabling ends the user's sessions at once
``hotline users reset-password NAME``      a new password; the user's sessions end
``hotline users set-role NAME --role R``   viewer, analyst or admin (applies at once)
``hotline tokens create NAME --role R``    a token for a script: its secret is shown once
``hotline tokens list``, ``tokens revoke NAME``

Every change is an event in the audit stream whose actor is ``admin@<login name>``. A name,
role or password the store refuses is bad input: one line, exit 2.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from hotline.cli.app import JsonOption, err, open_session, out
from hotline.cli.render import emit, json_or_empty, table, time_cell
from hotline.errors import UsageError
from store.accounts import (
    ROLES,
    AccountError,
    Accounts,
    UserExists,
    UserNotFound,
    check_password,
    validate_role,
    validate_user_name,
)

__all__ = ["tokens_app", "users_app"]

users_app = typer.Typer(
    help="Accounts of the analyst console: add, list, disable, enable, reset a password, "
    "set a role.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="API tokens for scripts that use the console's API: create, list, revoke.",
    no_args_is_help=True,
)

UserArgument = Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")]
TokenArgument = Annotated[str, typer.Argument(metavar="NAME", help="The token's name.")]
RoleOption = Annotated[
    str, typer.Option("--role", metavar="ROLE", help=f"One of {', '.join(ROLES)}.")
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password as one line from standard input instead of asking for it.",
    ),
]


def _actor() -> str:
    """``admin@<login name>``: who made a change, in the audit trail."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"admin@{login}"


@contextmanager
def _accounts() -> Iterator[Accounts]:
    """The accounts on the configured Redis; their refusals are bad input (exit 2)."""
    with open_session() as session:
        try:
            yield Accounts(session.client, session.keys)
        except AccountError as exc:
            raise UsageError(str(exc)) from None


def _password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or asked twice without echo."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--password-stdin: standard input has no line")
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    try:
        return check_password(password)
    except AccountError as exc:
        raise UsageError(str(exc)) from None


# -- users -----------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    name: UserArgument,
    role: RoleOption,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Add a user of the console with a role and a password (at least 12 characters; kept
    as an Argon2id hash only)."""
    with _accounts() as accounts:
        validate_user_name(name)
        validate_role(role)
        try:  # refuse before asking for a password
            accounts.get_user(name)
        except UserNotFound:
            pass
        else:
            raise UserExists(f"user {name!r} exists already")
        user = accounts.add_user(name, role, _password(password_stdin), actor=_actor())
    emit(user.as_json(), f"user {user.name} added (role {user.role})", as_json=as_json)


@users_app.command("list")
def users_list(as_json: JsonOption = False) -> None:
    """List the users: role, status, when added, when their password last changed."""
    with _accounts() as accounts:
        users = accounts.users()
    if json_or_empty(users, [u.as_json() for u in users], empty="no users", as_json=as_json):
        return
    rows = (
        (
            u.name,
            u.role,
            "disabled" if u.disabled else "active",
            time_cell(u.created),
            time_cell(u.password_changed),
        )
        for u in users
    )
    columns = ["name", "role", "status", "created (UTC)", "password changed (UTC)"]
    out.print(table("users", columns, rows))


@users_app.command("disable")
def users_disable(name: UserArgument, as_json: JsonOption = False) -> None:
    """Disable a user: they cannot log in, and every session of theirs ends now."""
    with _accounts() as accounts:
        user = accounts.disable_user(name, actor=_actor())
    emit(user.as_json(), f"user {user.name} disabled; their sessions ended", as_json=as_json)


@users_app.command("enable")
def users_enable(name: UserArgument, as_json: JsonOption = False) -> None:
    """Let a disabled user log in again (with the password they had)."""
    with _accounts() as accounts:
        user = accounts.enable_user(name, actor=_actor())
    emit(user.as_json(), f"user {user.name} enabled", as_json=as_json)


@users_app.command("reset-password")
def users_reset_password(
    name: UserArgument, password_stdin: PasswordStdinOption = False, as_json: JsonOption = False
) -> None:
    """Give a user a new password; every session of theirs ends now."""
    with _accounts() as accounts:
        accounts.get_user(name)  # refuse an unknown name before asking for a password
        user = accounts.reset_password(name, _password(password_stdin), actor=_actor())
    emit(
        user.as_json(),
        f"password of user {user.name} reset; their sessions ended",
        as_json=as_json,
    )


@users_app.command("set-role")
def users_set_role(name: UserArgument, role: RoleOption, as_json: JsonOption = False) -> None:
    """Give a user another role; it applies to their sessions at their next request."""
    with _accounts() as accounts:
        user = accounts.set_role(name, role, actor=_actor())
    emit(user.as_json(), f"user {user.name} is now {user.role}", as_json=as_json)


# -- API tokens --------------------------------------------------------------------------------

_NOT_AGAIN = "Store this secret now: it will not be shown again."


@tokens_app.command("create")
def tokens_create(name: TokenArgument, role: RoleOption, as_json: JsonOption = False) -> None:
    """Create an API token for a script (sent as 'Authorization: Bearer SECRET'). Its secret
    is printed now, once: only its SHA-256 is kept."""
    with _accounts() as accounts:
        token, secret = accounts.create_token(name, role, actor=_actor())
    if as_json:
        out.print_json(data={**token.as_json(), "secret": secret})
        err.print(_NOT_AGAIN, markup=False)
        return
    out.print(f"token {token.name} created (role {token.role}); its secret:", markup=False)
    out.print(secret, markup=False)
    out.print(_NOT_AGAIN, markup=False)


@tokens_app.command("list")
def tokens_list(as_json: JsonOption = False) -> None:
    """List the API tokens (never their secrets): role, status, created, last used."""
    with _accounts() as accounts:
        tokens = accounts.tokens()
    if json_or_empty(tokens, [t.as_json() for t in tokens], empty="no tokens", as_json=as_json):
        return
    rows = (
        (
            t.name,
            t.role,
            "active" if t.active else "revoked",
            time_cell(t.created),
            time_cell(t.last_used),
            time_cell(t.revoked),
        )
        for t in tokens
    )
    columns = ["name", "role", "status", "created (UTC)", "last used (UTC)", "revoked (UTC)"]
    out.print(table("API tokens", columns, rows))


@tokens_app.command("revoke")
def tokens_revoke(name: TokenArgument, as_json: JsonOption = False) -> None:
    """Revoke an API token: it authenticates nothing from now on. Its name may be used
    again for a new token."""
    with _accounts() as accounts:
        token = accounts.revoke_token(name, actor=_actor())
    emit(token.as_json(), f"token {token.name} revoked", as_json=as_json)
