"""API keys: the key file, and the check that a request needs one and carries it.

The check is a small ASGI middleware, not a FastAPI dependency: FastAPI reads and parses a body
before it runs dependencies, and a caller without a key must not get that far (nor learn from a
422 what the body lacked). The routes that need a key declare :data:`BEARER` so that FastAPI's
OpenAPI document says so.
"""
from __future__ import annotations

import hmac
from pathlib import Path

from fastapi.security import HTTPBearer
from starlette.responses import JSONResponse
from starlette.routing import Match

#: declared by the routes that need a key: it documents them (KeyCheck has already refused a
#: request without a valid key, before routing)
BEARER = HTTPBearer(scheme_name="apiKey", auto_error=False,
                    description="one of the keys of serve --api-key-file, as 'Authorization: Bearer KEY'")


class KeyFileError(ValueError):
    """A key file that cannot be read or holds no key (at start-up, or a reload: HTTP 422)."""


def read_api_keys(path: str | Path) -> tuple[str, ...]:
    """One key per line (several allow rotation); blank lines and ``#`` comments are ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise KeyFileError(f"--api-key-file {path}: cannot read it ({error.strerror})") from None
    keys = tuple(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))
    if not keys:
        raise KeyFileError(f"--api-key-file {path}: holds no key")
    return keys


class KeyCheck:
    """401 for a request without a valid key, unless it is for an open route (``/healthz``: load
    balancers probe without one) or, with ``public_reads``, for any route but ``writes``. The
    keys are read from ``settings`` on each request, so a reload can rotate them."""

    def __init__(self, app, settings, writes: list, open_routes: list):
        self.app, self.settings, self.writes, self.open_routes = app, settings, writes, open_routes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self._needs_key(scope) and \
                not valid_key(dict(scope["headers"]).get(b"authorization", b""), self.settings.api_keys):
            refusal = JSONResponse({"detail": "missing or wrong API key (send Authorization: Bearer KEY)"},
                                   status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await refusal(scope, receive, send)
        await self.app(scope, receive, send)

    def _needs_key(self, scope) -> bool:
        if _matches(self.open_routes, scope):
            return False
        return not self.settings.public_reads or _matches(self.writes, scope)


def _matches(routes: list, scope) -> bool:
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def valid_key(authorization: bytes, keys: tuple[str, ...]) -> bool:
    scheme, _, key = authorization.decode("latin-1").partition(" ")
    # every key compared, in constant time each: the answer's timing tells nothing of a key
    matches = [hmac.compare_digest(key.strip().encode("latin-1"), k.encode()) for k in keys]
    return scheme.lower() == "bearer" and any(matches)
