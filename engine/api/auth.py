"""Bearer-token authentication and the two roles of the API.

Only SHA-256 hashes of the configured tokens are kept. A presented token is hashed and
compared with `hmac.compare_digest` against every configured hash, without stopping at a
match, so the time taken does not tell which (or whether any) token was close.

`his` callers may send messages and read their status; `operator` callers may do
everything, including reading payloads, suspending breakers and replaying.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.responses import error_response, shielded

Role = Literal["his", "operator"]
ROLES: frozenset[str] = frozenset({"his", "operator"})
ANY_ROLE: frozenset[str] = ROLES
OPERATOR_ONLY: frozenset[str] = frozenset({"operator"})

Endpoint = Callable[[Request], Awaitable[Response]]
CallerEndpoint = Callable[[Request, "Caller"], Awaitable[Response]]


@dataclass(frozen=True)
class Caller:
    """Who made a request: the configured token's name and role."""

    name: str
    role: str


class TokenTable:
    """The configured tokens, by hash."""

    def __init__(self, tokens: Iterable[tuple[str, str, str]]) -> None:
        self._entries: list[tuple[bytes, Caller]] = []
        for name, role, token in tokens:
            if role not in ROLES:
                raise ValueError(f"API token {name!r}: role must be one of {sorted(ROLES)}, not {role!r}")
            if not token:
                raise ValueError(f"API token {name!r} is empty")
            self._entries.append((_digest(token), Caller(name, role)))

    def identify(self, authorization: str | None) -> Caller | None:
        """The caller whose token is in the `Authorization: Bearer …` header, if any."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        presented = _digest(token)
        found: Caller | None = None
        for digest, caller in self._entries:
            if hmac.compare_digest(presented, digest):
                found = caller
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def unauthorized(reason: str) -> Response:
    return error_response(401, "unauthorized", reason, headers={"WWW-Authenticate": "Bearer"})


def check(tokens: TokenTable, authorization: str | None, roles: frozenset[str]) -> Caller | Response:
    """The caller when allowed, else the 401/403 response to send."""
    caller = tokens.identify(authorization)
    if caller is None:
        if not authorization:
            return unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        return unauthorized("invalid bearer token")
    if caller.role not in roles:
        needed = " or ".join(sorted(roles))
        return error_response(
            403, "forbidden", f"token {caller.name!r} has role {caller.role!r}; this needs role {needed}",
            required_role=needed,
        )
    return caller


def guarded(tokens: TokenTable, roles: frozenset[str], endpoint: CallerEndpoint) -> Endpoint:
    """Wrap a core endpoint so it runs only for an allowed caller, who is passed to it."""

    async def run(request: Request) -> Response:
        caller = check(tokens, request.headers.get("authorization"), roles)
        if isinstance(caller, Response):
            return caller
        request.state.caller = caller
        return await endpoint(request, caller)

    run.__name__ = endpoint.__name__
    run.__doc__ = endpoint.__doc__
    return shielded(run)


class BearerAuth:
    """ASGI middleware giving mounted (plugin) routes the same authentication as the core
    API. The caller is left in `request.state.caller`."""

    def __init__(self, app: ASGIApp, *, tokens: TokenTable, roles: frozenset[str] = ANY_ROLE) -> None:
        self.app = app
        self.tokens = tokens
        self.roles = roles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        caller = check(self.tokens, authorization, self.roles)
        if isinstance(caller, Response):
            await caller(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
