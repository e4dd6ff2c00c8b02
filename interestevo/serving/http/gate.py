"""What a request must pass before routing: a path under /v1/users/ that names one user, and a
body within the limit (declared or streamed)."""
from __future__ import annotations

from starlette.responses import JSONResponse

USER = "/v1/users/{user:path}"


class RequestGate:
    """ASGI middleware: 404 for a path that would name another user than the client wrote, 413
    for a body over ``settings.max_body_bytes``. It reads the body itself, so a chunked one (no
    content-length) is limited too, and hands it on whole."""

    def __init__(self, app, settings, routes: list):
        self.app, self.settings = app, settings
        # From the routes, so that a new one needs no change here: /v1/users/{user}/<name> ...
        self._user_routes = {r.path[len(USER) + 1:].encode() for r in routes if r.path.startswith(USER + "/")}
        # ... and the methods of /v1/users/{user} itself, which would take "u1/<name>" as a user id.
        self._whole_path_methods = set().union(*(r.methods for r in routes if r.path == USER))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.settings.max_body_bytes
        if not self._one_user_segment(scope):
            return await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _too_large(limit)(scope, receive, send)
        body, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.append(message.get("body", b""))
            size, more = size + len(body[-1]), message.get("more_body", False)
            if size > limit:
                return await _too_large(limit)(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _one_user_segment(self, scope) -> bool:
        """Whether a path under /v1/users/ is /v1/users/{user}[/route] in the bytes the client sent.
        The routes take a "/" inside an id (sent as %2F, decoded before routing), so an unencoded one
        (a trailing slash, an extra segment) would otherwise name another user, e.g. a DELETE of
        "/v1/users/u1/" erasing user "u1/" instead of refusing."""
        raw = scope.get("raw_path")
        if raw is None or not raw.startswith(b"/v1/users/"):
            return True
        segments = raw.split(b"/")[3:]
        return len(segments) == 1 or (len(segments) == 2 and segments[1] in self._user_routes
                                      and scope["method"] not in self._whole_path_methods)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over the limit of {limit} bytes"}, status_code=413)
