"""Who may do what: roles, the actions they allow, and the tag scope of services, repositories and secrets.

One table decides every call.  The gRPC interceptor (rpc/interceptor.py) maps
each method to an `Action` (rpc/policy.py) and asks `check()` here; the
engine asks `service_visible()` / `check_service_scope()` / `check_users_in_scope()` where what a caller
sees or changes depends on a service's tags; the TUI asks `allows()` to grey
or hide what the user may not do (the server refuses anyway).

Built-in roles:

* admin    - everything: users, the audit trail, secret values, export and import;
* editor   - create, edit and delete repositories, decorators, services and secrets; run;
* operator - run services (and cancel runs); read everything but secret values;
* viewer   - read; no runs.

A role other than admin may be limited to tags (``scope tag=site-a``; several
scopes: any of them).  Services, repositories and secrets carry tags, and a
scoped user sees, runs, edits and deletes only those that carry one of the
scope's tags, and sees only the runs of such services: to them anything else
does not exist (NOT_FOUND), an untagged repository or secret included.  What
they create or edit must keep one of the scope's tags, and what they attach
(a service's repository and secrets, a repository's or a registry's
credential secrets, a secret given to a run) must be theirs to see (else
NOT_FOUND), and a registry a service of theirs installs from must hold
credentials they see (else PERMISSION_DENIED).  A repository, secret, registry or decorator
that a service outside their scope uses is changed or deleted only by a user
whose scope covers every service that uses it, or by an unscoped user
(`check_users_in_scope`).  Decorators and registries carry no tags: every
user sees them.

Users stored before roles existed have no role: they are admins, as every
user of IAG 5 is a superuser.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
from typing import Iterable, Iterator

from ..errors import InvalidArgument, PermissionDenied

ADMIN, EDITOR, OPERATOR, VIEWER = "admin", "editor", "operator", "viewer"
ROLES = (ADMIN, EDITOR, OPERATOR, VIEWER)
DEFAULT_ROLE = VIEWER  # a new user given neither --role nor --admin
LEGACY_ROLE = ADMIN    # a stored user with no role (IAG 5, and this gateway before roles)
SCOPE_PREFIX = "tag="


class Action(enum.Enum):
    """What a call does, as far as who may do it goes."""

    SELF = "self"        # about yourself: who am I, log out, your API keys
    READ = "read"        # list and show resources, runs, runners (never a secret value)
    WRITE = "write"      # create, edit, delete repositories, decorators, services, secrets
    RUN = "run"          # start a run, cancel one
    REVEAL = "reveal"    # a secret's value
    EXPORT = "export"    # the whole database, secrets included (sealed)
    IMPORT = "import"    # write a whole document at once, secrets included
    USERS = "users"      # create, edit, delete users; every user's API keys
    AUDIT = "audit"      # read the audit trail
    SYSTEM = "system"    # define executable objects: the interpreters and binaries services may run
    PRUNE = "prune"      # delete runs and their output (run history)


# The one table: role -> what it may do.
GRANTS: dict[str, frozenset[Action]] = {
    ADMIN: frozenset(Action),
    EDITOR: frozenset({Action.SELF, Action.READ, Action.WRITE, Action.RUN}),
    OPERATOR: frozenset({Action.SELF, Action.READ, Action.RUN}),
    VIEWER: frozenset({Action.SELF, Action.READ}),
}

# How a refusal names what was refused: "<user> is a viewer: running services needs ...".
_PHRASES = {
    Action.SELF: "this",
    Action.READ: "reading",
    Action.WRITE: "creating, editing and deleting",
    Action.RUN: "running services",
    Action.REVEAL: "revealing secret values",
    Action.EXPORT: "exporting the database (its secrets too)",
    Action.IMPORT: "importing a database",
    Action.USERS: "user management",
    Action.AUDIT: "the audit trail",
    Action.SYSTEM: "defining executable objects",
    Action.PRUNE: "deleting runs",
}


def _article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def roles_allowing(action: Action) -> list[str]:
    return [role for role in ROLES if action in GRANTS[role]]


def refusal(user: str, role: str, action: Action) -> PermissionDenied:
    """One line: who, what they are, and who may do it."""
    allowed = roles_allowing(action)
    names = [_article(r) for r in allowed]
    needs = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    who = f"{user} is not an admin" if role != ADMIN and allowed == [ADMIN] else f"{user} is {_article(role)}"
    return PermissionDenied(f"{who}: {_PHRASES[action]} needs {needs}")


@dataclasses.dataclass(frozen=True)
class Grant:
    """What one caller may do: their role and the tags their services are limited to (empty: all)."""

    user: str
    role: str
    scope: tuple[str, ...] = ()

    def allows(self, action: Action) -> bool:
        return allows(self.role, action)

    def sees(self, tags: Iterable[str]) -> bool:
        """Whether a service, repository or secret with these tags is within the scope."""
        return self.role == ADMIN or not self.scope or bool(set(self.scope) & set(tags))


def allows(role: str, action: Action) -> bool:
    return action in GRANTS.get(role, frozenset())


def check(grant: Grant, action: Action) -> None:
    if not grant.allows(action):
        raise refusal(grant.user, grant.role, action)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument(f"unknown role {role!r}; roles: {', '.join(ROLES)}", {"role": "unknown role"})
    return role


def parse_scope(items: Iterable[str]) -> tuple[str, ...]:
    """``tag=site-a`` (or a bare tag) -> the tags; InvalidArgument for anything else."""
    from ..resources.base import TAG_RE

    tags: list[str] = []
    for item in items:
        text = item.strip()
        tag = text[len(SCOPE_PREFIX):] if text.startswith(SCOPE_PREFIX) else text
        if not TAG_RE.fullmatch(tag):
            raise InvalidArgument(f"scope {item!r} is not valid: expected tag=TAG (a service tag)",
                                  {"scope": "expected tag=TAG"})
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def check_scope(role: str, scope: tuple[str, ...]) -> None:
    if scope and role == ADMIN:
        raise InvalidArgument("an admin sees every service: a scope is for the roles editor, operator and viewer",
                              {"scope": "not for an admin"})


def scope_text(scope: Iterable[str]) -> str:
    return ",".join(f"{SCOPE_PREFIX}{tag}" for tag in scope)


# ---------------------------------------------------------------- the caller of the call being served
# Set by the server's interceptor for each call; None where nobody is calling through a server (local mode,
# the server's own work): then nothing is limited.
_grant: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("gateway_grant", default=None)


def current_grant() -> Grant | None:
    return _grant.get()


@contextlib.contextmanager
def acting_as(grant: Grant | None) -> Iterator[None]:
    token = _grant.set(grant)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # reset from another context: nothing to put back
            _grant.reset(token)


def service_visible(tags: Iterable[str]) -> bool:
    """Whether the caller may see (and, role allowing, run or change) a service, repository or secret with
    these tags."""
    grant = _grant.get()
    return grant is None or grant.sees(tags)


def scoped_caller() -> Grant | None:
    """The caller's grant when a scope limits what they see; None when nothing does."""
    grant = _grant.get()
    return grant if grant is not None and grant.scope and grant.role != ADMIN else None


_PLURALS = {"service": "services", "repository": "repositories", "secret": "secrets"}


def check_service_scope(name: str, tags: Iterable[str], kind: str = "service") -> None:
    """A service, repository or secret a scoped caller creates or edits must keep one of the scope's tags."""
    grant = _grant.get()
    if grant is not None and not grant.sees(tags):
        raise PermissionDenied(f"{grant.user} may only have {_PLURALS.get(kind, kind)} tagged "
                               f"{scope_text(grant.scope)}: give {kind} {name} one of those tags")


def check_users_in_scope(kind: str, name: str, outside: int, doing: str = "change") -> None:
    """A resource that `outside` services beyond the caller's scope use (directly, or through a repository or a
    registry) is changed or deleted only by someone whose scope covers them all: those services are not named."""
    grant = scoped_caller()
    if grant is not None and outside:
        services = "a service" if outside == 1 else f"{outside} services"
        raise PermissionDenied(f"{grant.user} may not {doing} {kind} {name}: it is used by {services} outside "
                               f"{scope_text(grant.scope)}; only a user whose scope covers every service that uses "
                               "it, or an unscoped user, may")


def refuse_attaching(kind: str, name: str, what: str, why: str) -> None:
    """A scoped caller may not attach `what` to `kind` `name`: raised, saying why."""
    grant = scoped_caller()
    if grant is not None:
        raise PermissionDenied(f"{grant.user} may not give {kind} {name} {what}: {why} "
                               f"({scope_text(grant.scope)})")


def check_reveal(what: str) -> None:
    """`what` (a part of a call its own line in the table does not cover: an OpenTofu state, say) shows secret
    values: the caller's role must allow revealing them."""
    action = Action.REVEAL
    grant = _grant.get()
    if grant is not None and not grant.allows(action):
        allowed = roles_allowing(action)
        names = [_article(r) for r in allowed]
        needs = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        who = (f"{grant.user} is not an admin" if grant.role != ADMIN and allowed == [ADMIN]
               else f"{grant.user} is {_article(grant.role)}")
        raise PermissionDenied(f"{who}: {what} needs the right to reveal secret values ({needs})")
