"""Which error is which answer. A domain error is mapped to its status here, by its class; an
exception no one mapped is the service's fault: a 500 naming a request id that the log's
traceback names too, never a 4xx that would blame the client."""
from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse

from ...run.layout import RunError
from ..tracker import NoCategoriesError, NoEventsError, OutOfOrderError, TooEarlyError, UnknownItemError
from .auth import KeyFileError

log = logging.getLogger("interestevo.serving")

#: the status of each domain error (its message is the answer's detail)
STATUS = {
    OutOfOrderError: 409,  # an event older than its user's last one: nothing of the request was applied
    NoEventsError: 404,  # nothing to explain
    UnknownItemError: 422,
    NoCategoriesError: 422,  # an interest forecast from a model without item categories
    TooEarlyError: 422,  # a request time before the user's last event
    RunError: 422,  # a reload to a run or model that is not there
    KeyFileError: 422,  # a reload whose key file holds no key
}

#: what each status means, for the OpenAPI document (FastAPI adds 422 itself)
MEANING = {401: "a missing or wrong API key (with --api-key-file)",
           404: "the user has no events to explain",
           409: "an event older than its user's last one: nothing of the request was applied",
           413: "a body over --max-body-bytes",
           500: "an unexpected error; request_id names it in the service's log",
           503: "the store cannot be reached (Retry-After says when to try again)"}


def responses(*codes: int) -> dict:
    """OpenAPI ``responses`` for those error codes, and 500."""
    return {code: {"description": MEANING[code]} for code in (*codes, 500)}


def add_handlers(app: FastAPI, unavailable_errors: tuple[type[Exception], ...]) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    for error in STATUS:
        app.add_exception_handler(error, domain_error)
    for error in unavailable_errors:
        app.add_exception_handler(error, store_unavailable)


async def invalid_request(request: Request, error: RequestValidationError):
    # FastAPI's answer without each error's "input": it can be megabytes, or a NaN JSON cannot hold.
    return JSONResponse({"detail": [{key: value for key, value in e.items() if key in ("type", "loc", "msg")}
                                    for e in error.errors()]}, status_code=422)


async def domain_error(request: Request, error: Exception):
    status = next(code for kind, code in STATUS.items() if isinstance(error, kind))
    return JSONResponse({"detail": str(error)}, status_code=status)


async def store_unavailable(request: Request, error: Exception):
    log.error("the store cannot serve %s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": f"the store is unavailable, try again later ({type(error).__name__}: {error})"},
                        status_code=503, headers={"Retry-After": "1"})


class UnexpectedErrors:
    """ASGI middleware: an exception that no handler answered becomes a 500 whose body and
    ``X-Request-ID`` header carry the id that the logged traceback carries."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            request_id = uuid.uuid4().hex
            log.exception("request %s failed: %s %s", request_id, scope["method"], scope["path"])
            if started:  # half an answer is out: only closing the connection is left
                raise
            await JSONResponse({"detail": f"internal error; request id {request_id} in the service's log",
                                "request_id": request_id}, status_code=500,
                               headers={"X-Request-ID": request_id})(scope, receive, send)
