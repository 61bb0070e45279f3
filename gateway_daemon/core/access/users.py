"""The Gateway's users, logins, API keys and audit trail as a server keeps them.

The Engine of local mode has none of them (every call says so); a server's Engine is composed with this
(core.engine.ServerEngine), so that each of its servicers is proto -> one Gateway call -> proto.  The caller
is the session of the call being served (core.access.auth.current_session), set by the face.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..api import ApiKeyInfo, Identity, Login, UserInfo
from ..errors import FailedPrecondition
from .audit import current_actor
from .auth import Auth, User, current_session
from .roles import parse_scope

if TYPE_CHECKING:
    from .audit import AuditEvent, AuditTrail

log = logging.getLogger("gateway.server")


def _source() -> str:
    """The address the call being served came from ("" when not known)."""
    actor = current_actor()
    return actor.source if actor is not None else ""


class ServerUsers:
    def __init__(self, auth: Auth, audit: "AuditTrail | None"):
        self.auth = auth
        self._trail = audit

    async def _user_info(self, user: User) -> UserInfo:
        return UserInfo(name=user.name, admin=user.admin, created_at=user.created_at,
                        last_login_at=user.last_login_at, must_change_password=user.must_change_password,
                        role=user.role, scope=tuple(user.scope), locked_until=await self.auth.lock_of(user.name))

    async def whoami(self) -> Identity:
        session = current_session()
        return Identity(username=session.user.name, admin=session.user.admin, expires_at=session.expires_at,
                        role=session.user.role, scope=tuple(session.user.scope))

    async def login(self, username: str, password: str, new_password: str = "") -> Login:
        key, expires_at, user = await self.auth.login(username, password, new_password, _source())
        log.info("user %s logged in", user.name)
        return Login(api_key=key, username=user.name, admin=user.admin, expires_at=expires_at, role=user.role,
                     scope=tuple(user.scope))

    async def change_password(self, username: str, password: str, new_password: str) -> None:
        await self.auth.change_password(username, password, new_password, _source())
        log.info("user %s changed their password; their API keys are revoked", username)

    async def logout(self) -> None:
        await self.auth.logout(current_session())

    async def list_users(self) -> list[UserInfo]:
        return [await self._user_info(user) for user in await self.auth.list_users()]

    async def get_user(self, name: str) -> UserInfo:
        return await self._user_info(await self.auth.get_user(name))

    async def create_user(self, name: str, password: str, admin: bool = False, temporary: bool = False,
                          role: str = "", scope: tuple[str, ...] = ()) -> UserInfo:
        return await self._user_info(await self.auth.create_user(name, password, admin, temporary, role,
                                                            parse_scope(scope)))

    async def update_user(self, name: str, admin: bool | None = None, password: str | None = None,
                          role: str | None = None, scope: tuple[str, ...] | None = None,
                          unlock: bool = False) -> UserInfo:
        user = await self.auth.update_user(current_session().user, name, admin, password, role,
                                           parse_scope(scope) if scope is not None else None, unlock)
        return await self._user_info(user)

    async def delete_user(self, name: str) -> None:
        await self.auth.delete_user(current_session().user, name)

    async def list_audit(self, user: str = "", action: str = "", since: str = "",
                         limit: int = 0) -> list["AuditEvent"]:
        if self._trail is None:
            raise FailedPrecondition("this server keeps no audit trail")
        return await self._trail.list(user, action, since, limit)

    async def list_apikeys(self) -> list[ApiKeyInfo]:
        return [ApiKeyInfo(**key) for key in await self.auth.list_keys(current_session())]

    async def delete_apikey(self, key_id: str) -> None:
        session = current_session()
        user = await self.auth.delete_key(session, key_id)
        log.info("API key %s of %s revoked by %s", key_id, user, session.user.name)
