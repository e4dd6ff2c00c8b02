"""The routes, in three groups by who may call them: writes need a key whenever keys are set,
reads unless ``--public-reads``, probes never."""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Query
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from ..tracker import Event, RecommendRequest
from .errors import responses
from .reload import Reloader
from .schemas import (At, EventsIn, EventsOut, ExplanationOut, ForgetOut, InterestOut, ManyRecommendationsOut,
                      RecommendationsIn, RecommendationsOut, ReloadIn, UserId)
from .service import Service

#: how long /healthz waits for the store
HEALTH_TIMEOUT_S = 2.0


@dataclass
class Routers:
    writes: APIRouter
    reads: APIRouter
    probes: APIRouter

    def every_route(self) -> list:
        """The routes themselves (an app's own list may hold its included routers instead)."""
        return [*self.writes.routes, *self.reads.routes, *self.probes.routes]


def routers(service: Service, reloader: Reloader) -> Routers:
    routes = Routers(APIRouter(), APIRouter(), APIRouter())
    _writes(routes.writes, service, reloader)
    _reads(routes.reads, service)
    _probes(routes.probes, service)
    return routes


def _writes(router: APIRouter, service: Service, reloader: Reloader) -> None:
    tracker = service.tracker

    @router.post("/v1/events", response_model=EventsOut, responses=responses(401, 409, 413, 503))
    async def post_events(body: EventsIn):
        """Apply events in order per user; the answer comes once they are durable in the store."""
        result = await service.run(tracker.apply_events, [Event(e.user, e.item, e.time, e.id) for e in body.events])
        service.metrics.events.inc(result["applied"])
        service.metrics.duplicates.inc(result["duplicates"])
        return result

    @router.delete("/v1/users/{user:path}", response_model=ForgetOut, responses=responses(401, 503))
    async def forget(user: UserId):
        """Erase the user's state, seen items and events from the store, durably."""
        return {"user": user, "forgotten": await service.run(tracker.forget, user)}

    @router.post("/v1/admin/reload", responses={**responses(401, 413), 202: {
        "description": "serve --workers N: every process is being replaced by one with the newest checkpoint "
                       "(each process's /healthz names its weights)"}})
    async def reload(body: Annotated[ReloadIn | None, Body()] = None):
        return await reloader(body or ReloadIn())


def _reads(router: APIRouter, service: Service) -> None:
    tracker = service.tracker

    @router.get("/v1/users/{user:path}/recommendations", response_model=RecommendationsOut,
                responses=responses(401, 503))
    async def recommendations(user: UserId, k: Annotated[int, Query(ge=1, le=1000)] = 10,
                              at: Annotated[At | None, Query()] = None, exclude_seen: bool = False):
        # The tracker answers in plain JSON types: skip FastAPI's generic encoder on the hot path.
        return JSONResponse(await service.batcher.submit(RecommendRequest(user, _now_or(at), k, exclude_seen)))

    @router.post("/v1/recommendations", response_model=ManyRecommendationsOut, responses=responses(401, 413, 503))
    async def many_recommendations(body: RecommendationsIn):
        at = _now_or(body.at)
        answers = await asyncio.gather(*[service.batcher.submit(RecommendRequest(u, at, body.k, body.exclude_seen))
                                         for u in body.users])
        return JSONResponse({"results": answers})

    @router.get("/v1/users/{user:path}/interest", response_model=InterestOut, responses=responses(401, 503))
    async def interest(user: UserId, at: Annotated[At | None, Query()] = None):
        return JSONResponse(await service.run(tracker.interest, user, _now_or(at)))

    @router.get("/v1/users/{user:path}/explanation", response_model=ExplanationOut,
                responses=responses(401, 404, 503))
    async def explanation(user: UserId, item: Annotated[str, Query(min_length=1, max_length=200)],
                          at: Annotated[At | None, Query()] = None):
        return JSONResponse(await service.run(tracker.explain, user, item, _now_or(at)))

    @router.get("/metrics", responses=responses(401))
    async def metrics():
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _probes(router: APIRouter, service: Service) -> None:
    @router.head("/healthz", include_in_schema=False)
    @router.get("/healthz", responses=responses(503))
    async def healthz():
        """200 while the model is loaded and the store answers, else 503 (for load balancers)."""
        served, store = service.tracker.served, service.tracker.store
        answer = {"status": "ok", "model": served.name, "run": str(served.run), "fingerprint": served.fingerprint,
                  "store": store.url.split("@")[-1], "pid": os.getpid()}
        try:  # on a thread of its own: a hung store must not hold the event loop
            await asyncio.wait_for(asyncio.to_thread(store.ping), HEALTH_TIMEOUT_S)
        except (asyncio.TimeoutError, *store.unavailable_errors) as error:
            return JSONResponse({**answer, "status": "unavailable", "detail": f"the store does not answer: "
                                                                              f"{error or 'timeout'}"}, status_code=503)
        return answer


def _now_or(at: int | None) -> int:
    return int(time.time()) if at is None else at
