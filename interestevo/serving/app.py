"""The HTTP face of the service: a FastAPI app over a :class:`~.engine.ServingEngine`.

It parses and answers. Concurrent recommendation requests are micro-batched into one model call,
computed on the event loop itself: they only read, and a second thread would hand the interpreter
lock to and fro with the loop at every tensor operation (measured at 500 requests/s: p99 12.5-17.2
ms inline against 17.0-46.0 ms on a worker thread). Everything that writes (events, forget, reload)
and the longer reads (interest, explanations) run in one worker thread, so the store sees one write
at a time, in arrival order, and each user's events stay in order.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Callable, Union

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, WithJsonSchema,
                      model_validator)
from starlette.routing import Match

from .engine import (Event, NoEventsError, OutOfOrderError, RecommendRequest, ServedModel, ServingEngine,
                     load_served_model)
from .tracker import MAX_SECONDS, MIN_SECONDS, as_unix_seconds

log = logging.getLogger("interestevo.serving")


# ------------------------------------------------------------------------- request models
def parse_time(value) -> int:
    """Unix seconds (a number, or its text) or an ISO-8601 datetime; naive ones are UTC."""
    if type(value) is int and MIN_SECONDS <= value <= MAX_SECONDS:  # the common case, without numpy
        return value
    if isinstance(value, bool):
        raise ValueError("expected unix seconds or an ISO-8601 datetime, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") or value.strip().lower() in ("inf", "nan") \
                else int(value)
        except ValueError:
            return iso_seconds(value)
    if not isinstance(value, (int, float)):
        raise ValueError(f"expected unix seconds or an ISO-8601 datetime, got {type(value).__name__}")
    return int(as_unix_seconds([value], 1, "time")[0])


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def iso_seconds(text: str) -> int:
    """Unix seconds of an ISO-8601 datetime (naive: UTC; fractions floored). Only ISO-8601: a
    lenient parser reads "01/02/2024" or "1 2 3" as some date, and a "+02:00" sent unencoded in a
    query arrives as " 02:00", which must be refused, not read as another time."""
    try:  # Python 3.10's fromisoformat does not know "Z"
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(f"expected unix seconds or an ISO-8601 datetime, got {_shown(text)}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - _EPOCH) // timedelta(seconds=1)
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"{_shown(text)} is outside years 1 to 9999 in UTC")
    return seconds


def _shown(text: str, limit: int = 40) -> str:
    """A bad value as an error message quotes it: enough to recognise, never the whole of a huge one."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def id_text(value) -> str:
    """A user or item id: a non-empty string or an integer, matched by its text as in InterestTracker."""
    if type(value) is str and 0 < len(value) <= 200:
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected a string or integer id, got {'null' if value is None else type(value).__name__}")
    text = str(value)
    if not text or len(text) > 200:
        raise ValueError("ids must be 1 to 200 characters long")
    return text


# What the OpenAPI document says of the two (the validators accept more than their Python types).
Id = Annotated[str, BeforeValidator(id_text), WithJsonSchema(
    {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}],
     "description": "an id, matched by its text (42 and \"42\" are one id)"})]
Time = Annotated[int, BeforeValidator(parse_time), WithJsonSchema(
    {"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "string", "format": "date-time"}],
     "description": "unix seconds (fractions floored) or an ISO-8601 datetime (naive: UTC)"})]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Id
    item: Id
    time: Time
    id: str | None = Field(None, min_length=1, max_length=200, description="idempotency key: a retried "
                                                                            "event is applied once")


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1)


class EventsOut(BaseModel):
    applied: int
    duplicates: int
    unknown_items: list[Union[StrictStr, StrictInt]]


#: items one POST /v1/recommendations may ask for (users x k): one call must not hold the service
MAX_ITEMS_PER_CALL = 100_000


class RecommendationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[Id] = Field(min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=1000)
    at: Time | None = None
    exclude_seen: bool = False

    @model_validator(mode="after")
    def _bounded(self):
        if len(self.users) * self.k > MAX_ITEMS_PER_CALL:
            raise ValueError(f"users x k must be at most {MAX_ITEMS_PER_CALL:,} items per call, got "
                             f"{len(self.users)} x {self.k}; split the users over several calls")
        return self


class RecommendedItem(BaseModel):
    item: Union[StrictStr, StrictInt]
    score: float
    title: str | None = Field(None, description="where the run's item file has titles")
    categories: list[str] | None = Field(None, description="where the items have categories")


class RecommendationsOut(BaseModel):
    user: str
    at: int
    hours_since_last_event: float | None
    model: str
    cold_start: bool
    items: list[RecommendedItem]


class ManyRecommendationsOut(BaseModel):
    results: list[RecommendationsOut]


class InterestOut(BaseModel):
    user: str
    at: int
    model: str
    cold_start: bool
    hours_since_last_event: float | None
    interest: dict[str, float] = Field(description="forecast share of each category")


class Contribution(BaseModel):
    item: Union[StrictStr, StrictInt]
    time: int
    contribution: float


class ExplanationOut(BaseModel):
    user: str
    item: Union[StrictStr, StrictInt]
    at: int
    model: str
    score: float
    elapsed_time_effect: float
    events: list[Contribution]


class ForgetOut(BaseModel):
    user: str
    forgotten: bool


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str | None = Field(None, description="another run directory to serve (default: the one served)")
    model: str | None = None


# ------------------------------------------------------------------------------ settings
@dataclass
class ServiceSettings:
    api_keys: tuple[str, ...] = ()  # empty: no authentication
    api_key_file: str | None = None  # where api_keys came from: a reload reads it again (key rotation)
    public_reads: bool = False  # with api_keys: reads need no key
    max_body_bytes: int = 4 * 1024 * 1024
    batch_window_s: float = 0.002
    max_batch: int = 256
    recompute_chunk: int = 512  # users per transaction when a reload recomputes states
    processes: int = 1  # serve --workers: with more, a reload restarts every process (SIGHUP to the parent)


def read_api_keys(path: str | Path) -> tuple[str, ...]:
    """One key per line (several allow rotation); blank lines and ``#`` comments are ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise ValueError(f"--api-key-file {path}: cannot read it ({error.strerror})") from None
    keys = tuple(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))
    if not keys:
        raise ValueError(f"--api-key-file {path}: holds no key")
    return keys


# ------------------------------------------------------------------------------ batching
class MicroBatcher:
    """Collects concurrent calls for a few milliseconds and runs them as one ``run_batch(items) ->
    results`` through ``run(run_batch, items)`` (awaitable: on the loop, or in a thread); calls that
    come while a batch computes wait for the next one."""

    def __init__(self, run_batch: Callable[[list], list], run, window_s: float, max_batch: int):
        self._run_batch, self._run = run_batch, run
        self._window_s, self._max_batch = window_s, max_batch
        self._pending: list[tuple[object, asyncio.Future]] = []
        self._running = False
        self.batches = 0

    async def submit(self, item):
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                if len(self._pending) < self._max_batch:
                    # Let concurrent requests join: the event loop parses them while this task waits.
                    await asyncio.sleep(self._window_s)
                batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
                try:
                    results = await self._run(self._run_batch, [item for item, _ in batch])
                except Exception as error:  # the whole batch failed: every caller hears why
                    results = [error] * len(batch)
                self.batches += 1
                for (_, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = False


# ------------------------------------------------------------------------------- metrics
class Metrics:
    """The service's Prometheus metrics. Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR``
    set) every process writes its counts to files there and a scrape adds up all of them, as
    prometheus-client's multiprocess mode does: whichever process answers, the totals are the service's."""

    def __init__(self, engine: ServingEngine):
        self.registry = CollectorRegistry()
        self.requests = Counter("interestevo_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("interestevo_http_request_duration_seconds", "HTTP request latency by route",
                                 ["route"], registry=self.registry,
                                 buckets=(.0005, .001, .0025, .005, .01, .015, .02, .025, .05, .1, .25, .5, 1, 2.5, 10))
        self.events = Counter("interestevo_events_applied", "events applied to users' states",
                              registry=self.registry)
        self.duplicates = Counter("interestevo_events_duplicate", "retried events recognised by their id",
                                  registry=self.registry)
        self.batch_size = Histogram("interestevo_recommendation_batch_size", "requests per model call",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.reloads = Counter("interestevo_reloads", "model reloads", registry=self.registry)
        self._store = StoreGauges(engine)
        self.registry.register(self._store)

    def exposition(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_process)
        every_process.register(self._store)
        return generate_latest(every_process)


class StoreGauges:
    """Users and the store's size, read from the store when scraped (NaN while it is unavailable:
    the other metrics still get scraped)."""

    def __init__(self, engine: ServingEngine):
        self.engine = engine

    def collect(self):
        store = self.engine.store
        for name, help, measure in (("interestevo_users", "users with state in the store", store.count_users),
                                    ("interestevo_store_bytes", "size of the store (file bytes, or Redis "
                                                                "used_memory)", store.size_bytes)):
            try:
                value = measure()
            except store.unavailable_errors:
                value = float("nan")
            yield GaugeMetricFamily(name, help, value=value)


class RequestGate:
    """ASGI middleware before every route: checks the API key (401) and the body's size (413)
    before anything parses the body, and counts every request by route, status and latency."""

    def __init__(self, app, metrics: Metrics, settings: ServiceSettings, routes: list):
        self.app, self.metrics, self.settings, self.routes = app, metrics, settings, routes
        # From the routes, so that a new one needs no change here: /v1/users/{user}/<name> ...
        self._user_routes = {r.path[len(_USER) + 1:].encode() for r in routes if r.path.startswith(_USER + "/")}
        # ... and the methods of /v1/users/{user} itself, which would take "u1/<name>" as a user id.
        self._whole_path_methods = set().union(*(r.methods for r in routes if r.path == _USER))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]
        headers = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            self._count(scope, refusal.status_code, start)
            return
        body, more = [], True
        while more:  # read the body here, so a chunked one (no content-length) is limited too
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, body)) > self.settings.max_body_bytes:
                await _too_large(self.settings.max_body_bytes)(scope, receive, send)
                self._count(scope, 413, start)
                return
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": b"".join(body), "more_body": False}
            return await receive()

        async def observed_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, replay, observed_send)
        self._count(scope, status[0], start)

    def _refusal(self, scope, headers: dict) -> JSONResponse | None:
        """401 without a valid key where one is needed, else 413 for a declared length over the limit."""
        if self._needs_key(scope) and not _valid_key(headers.get(b"authorization", b""), self.settings.api_keys):
            return JSONResponse({"detail": "missing or wrong API key (send Authorization: Bearer KEY)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if not self._one_user_segment(scope):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.settings.max_body_bytes):
            return _too_large(self.settings.max_body_bytes)
        return None

    def _needs_key(self, scope) -> bool:
        if not self.settings.api_keys or scope["path"] == "/healthz":  # load balancers probe without one
            return False
        return _is_write(scope["method"], scope["path"]) or not self.settings.public_reads

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

    def _count(self, scope, status: int, start: float) -> None:
        route = scope.get("route")
        if route is None:  # refused before routing (401, 413): the route it was for
            route = next((r for r in self.routes if r.matches(scope)[0] is Match.FULL), None)
        # "/v1/users/{user}/recommendations", not the template's "{user:path}" (ids may hold a "/")
        name = getattr(route, "path", "unmatched").replace(":path}", "}")
        self.metrics.requests.labels(name, scope["method"], str(status)).inc()
        self.metrics.latency.labels(name).observe(time.perf_counter() - start)


_USER = "/v1/users/{user:path}"


def _is_write(method: str, path: str) -> bool:
    """The routes that change state: events, forgetting a user, reloading the model."""
    return method == "DELETE" or (method == "POST" and path in ("/v1/events", "/v1/admin/reload"))


def _valid_key(authorization: bytes, keys: tuple[str, ...]) -> bool:
    scheme, _, key = authorization.decode("latin-1").partition(" ")
    # every key compared, in constant time each: the answer's timing tells nothing of a key
    matches = [hmac.compare_digest(key.strip().encode("latin-1"), k.encode()) for k in keys]
    return scheme.lower() == "bearer" and any(matches)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over the limit of {limit} bytes"}, status_code=413)


# ------------------------------------------------------------------------------- the app
class Service:
    """The engine, its worker thread, the batcher and what reload needs."""

    def __init__(self, engine: ServingEngine, settings: ServiceSettings):
        self.engine, self.settings = engine, settings
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interestevo-engine")
        self.metrics = Metrics(engine)
        self.batcher = MicroBatcher(self._recommend_batch, _run_here, settings.batch_window_s, settings.max_batch)
        self._reload_lock = asyncio.Lock()
        self.restart_requested = False  # serve --workers: this process asked for a restart (it will be replaced)

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _recommend_batch(self, requests: list[RecommendRequest]) -> list:
        self.metrics.batch_size.observe(len(requests))
        return self.engine.recommend(requests)

    async def reload(self, run: str | None = None, model: str | None = None) -> dict:
        """Load the newest checkpoint (of ``run``, default the served one) beside the running model,
        swap it in between two requests, then recompute every user's state under it in chunks
        (requests keep being answered; a user not yet recomputed is recomputed when touched)."""
        async with self._reload_lock:
            current = self.engine.served
            # Keys first: a bad key file fails the reload before anything changes.
            keys = read_api_keys(self.settings.api_key_file) if self.settings.api_key_file else ()
            served: ServedModel = await asyncio.to_thread(load_served_model, run or current.run,
                                                          model or current.name)
            self.settings.api_keys = keys
            await self.run(self.engine.swap, served)
            users = await self.run(lambda: list(self.engine.store.user_ids()))
            recomputed = unknown = 0
            for start in range(0, len(users), self.settings.recompute_chunk):
                changed, skipped = await self.run(self.engine.recompute,
                                                  users[start:start + self.settings.recompute_chunk])
                recomputed, unknown = recomputed + changed, unknown + skipped
            self.metrics.reloads.inc()
            log.info("reloaded %s from %s (weights %s): %d user states recomputed", served.name, served.run,
                     served.fingerprint, recomputed)
            if unknown:
                log.warning("%d stored events name items that %s's catalogue lacks: the recomputed states "
                            "leave them out (the events stay stored)", unknown, served.run)
            return {"model": served.name, "run": str(served.run), "fingerprint": served.fingerprint,
                    "previous_fingerprint": current.fingerprint, "users": len(users), "recomputed": recomputed,
                    "events_of_unknown_items": unknown}

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self.engine.store.close()


async def _run_here(fn, *args):
    return fn(*args)


_ERRORS = {401: "a missing or wrong API key (with --api-key-file)",
           404: "the user has no events to explain",
           409: "an event older than its user's last one: nothing of the request was applied",
           413: "a body over --max-body-bytes",
           503: "the store cannot be reached (Retry-After says when to try again)"}


def _errors(*codes: int) -> dict:
    """OpenAPI ``responses`` for those error codes (FastAPI adds 422 itself)."""
    return {code: {"description": _ERRORS[code]} for code in codes}


#: how long /healthz waits for the store
HEALTH_TIMEOUT_S = 2.0

UserId = Annotated[str, PathParameter(min_length=1, max_length=200)]


def create_app(service: Service) -> FastAPI:
    settings = service.settings

    @asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        try:  # SIGHUP reloads, as daemons do
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_logged(service)))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass
        yield
        service.close()

    app = FastAPI(title="interestevo", version="1", lifespan=lifespan,
                  description="Real-time recommendations from each user's interest state, at the request time.")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        # FastAPI's answer without each error's "input": it can be megabytes, or a NaN JSON cannot hold.
        return JSONResponse({"detail": [{key: value for key, value in e.items() if key in ("type", "loc", "msg")}
                                        for e in error.errors()]}, status_code=422)

    for unavailable in service.engine.store.unavailable_errors:
        app.add_exception_handler(unavailable, store_unavailable)

    @app.exception_handler(OutOfOrderError)
    async def out_of_order(request: Request, error: OutOfOrderError):
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(NoEventsError)
    async def no_events(request: Request, error: NoEventsError):
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError):
        return JSONResponse({"detail": str(error)}, status_code=422)

    def request_time(at: int | None) -> int:
        return int(time.time()) if at is None else at

    @app.post("/v1/events", response_model=EventsOut, responses=_errors(401, 409, 413, 503))
    async def post_events(body: EventsIn):
        """Apply events in order per user; the answer comes once they are durable in the store."""
        events = [Event(e.user, e.item, e.time, e.id) for e in body.events]
        result = await service.run(service.engine.apply_events, events)
        service.metrics.events.inc(result["applied"])
        service.metrics.duplicates.inc(result["duplicates"])
        return result

    @app.get("/v1/users/{user:path}/recommendations", response_model=RecommendationsOut, responses=_errors(401, 503))
    async def recommendations(user: UserId, k: Annotated[int, Query(ge=1, le=1000)] = 10,
                              at: Annotated[Time | None, Query()] = None, exclude_seen: bool = False):
        # The engine answers in plain JSON types: skip FastAPI's generic encoder on the hot path.
        return JSONResponse(await service.batcher.submit(RecommendRequest(user, request_time(at), k, exclude_seen)))

    @app.post("/v1/recommendations", response_model=ManyRecommendationsOut, responses=_errors(401, 413, 503))
    async def many_recommendations(body: RecommendationsIn):
        at = request_time(body.at)
        answers = await asyncio.gather(*[service.batcher.submit(RecommendRequest(u, at, body.k, body.exclude_seen))
                                         for u in body.users])
        return JSONResponse({"results": answers})

    @app.get("/v1/users/{user:path}/interest", response_model=InterestOut, responses=_errors(401, 503))
    async def interest(user: UserId, at: Annotated[Time | None, Query()] = None):
        return JSONResponse(await service.run(service.engine.interest, user, request_time(at)))

    @app.get("/v1/users/{user:path}/explanation", response_model=ExplanationOut, responses=_errors(401, 404, 503))
    async def explanation(user: UserId, item: Annotated[str, Query(min_length=1, max_length=200)],
                          at: Annotated[Time | None, Query()] = None):
        return JSONResponse(await service.run(service.engine.explain, user, item, request_time(at)))

    @app.delete("/v1/users/{user:path}", response_model=ForgetOut, responses=_errors(401, 503))
    async def forget(user: UserId):
        """Erase the user's state, seen items and events from the store, durably."""
        return {"user": user, "forgotten": await service.run(service.engine.forget, user)}

    @app.post("/v1/admin/reload", responses={**_errors(401, 413), 202: {
        "description": "serve --workers N: every process is being replaced by one with the newest checkpoint "
                       "(each process's /healthz names its weights)"}})
    async def reload(body: Annotated[ReloadIn | None, Body()] = None):
        body = body or ReloadIn()
        if settings.processes > 1:
            return restart_processes(body)
        return await service.reload(body.run, body.model)

    def restart_processes(body: ReloadIn) -> JSONResponse:
        """With several processes, each one must load the checkpoint: uvicorn's supervisor replaces
        them one at a time on SIGHUP (each new one loads the newest checkpoint; a state computed by
        the old weights is recomputed when its user is next touched)."""
        served = service.engine.served
        if (body.run is not None and Path(body.run).resolve() != served.run.resolve()) or \
                body.model not in (None, served.name):
            raise HTTPException(422, f"with {settings.processes} service processes a reload serves the newest "
                                     f"checkpoint of {served.name} in {served.run}; restart serve for another "
                                     "run or model")
        # This process is replaced by that restart: asking again from it would queue another one.
        already = service.restart_requested
        if not already:
            os.kill(os.getppid(), signal.SIGHUP)
            service.restart_requested = True
            service.metrics.reloads.inc()
        return JSONResponse({"model": served.name, "run": str(served.run), "processes": settings.processes,
                             "restarting": True, "already_requested": already,
                             "previous_fingerprint": served.fingerprint}, status_code=202)

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", responses=_errors(503))
    async def healthz():
        """200 while the model is loaded and the store answers, else 503 (for load balancers)."""
        served, store = service.engine.served, service.engine.store
        answer = {"status": "ok", "model": served.name, "run": str(served.run), "fingerprint": served.fingerprint,
                  "store": store.url.split("@")[-1], "pid": os.getpid()}
        try:  # on a thread of its own: a hung store must not hold the event loop
            await asyncio.wait_for(asyncio.to_thread(store.ping), HEALTH_TIMEOUT_S)
        except (asyncio.TimeoutError, *store.unavailable_errors) as error:
            return JSONResponse({**answer, "status": "unavailable", "detail": f"the store does not answer: "
                                                                              f"{error or 'timeout'}"}, status_code=503)
        return answer

    @app.get("/metrics", responses=_errors(401))
    async def metrics():
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestGate, metrics=service.metrics, settings=settings, routes=app.router.routes)
    if settings.api_keys:
        _document_keys(app, settings)
    return app


def _document_keys(app: FastAPI, settings: ServiceSettings) -> None:
    """The OpenAPI document says which operations need ``Authorization: Bearer KEY`` (checked by
    :class:`RequestGate`, not by FastAPI, so FastAPI's own document does not know)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {})["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    if path != "/healthz" and (_is_write(method.upper(), path) or not settings.public_reads):
                        operation["security"] = [{"apiKey": []}]
        return app.openapi_schema

    app.openapi = openapi


async def store_unavailable(request: Request, error: Exception):
    log.error("the store cannot serve %s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": f"the store is unavailable, try again later ({type(error).__name__}: {error})"},
                        status_code=503, headers={"Retry-After": "1"})


async def _reload_logged(service: Service) -> None:
    try:
        await service.reload()
    except Exception as error:  # a signal has no one to answer: say it in the log, keep serving
        log.error("reload on SIGHUP failed, still serving the previous model: %s", error)
