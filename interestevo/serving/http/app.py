"""The app: routes, error answers and middleware put together over one :class:`Service`."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Security

from .auth import BEARER, KeyCheck
from .errors import UnexpectedErrors, add_handlers
from .gate import RequestGate
from .metrics import RequestMetrics
from .reload import Reloader
from .routes import routers
from .service import Service


def create_app(service: Service) -> FastAPI:
    settings = service.settings
    reloader = Reloader(service)

    @asynccontextmanager
    async def lifespan(app):
        reloader.reload_on_sighup()
        yield
        service.close()

    app = FastAPI(title="interestevo", version="1", lifespan=lifespan,
                  description="Real-time recommendations from each user's interest state, at the request time.")
    add_handlers(app, service.tracker.store.unavailable_errors)
    routes = routers(service, reloader)
    keyed = [Security(BEARER)] if settings.api_keys else []
    app.include_router(routes.writes, dependencies=keyed)
    app.include_router(routes.reads, dependencies=[] if settings.public_reads else keyed)
    app.include_router(routes.probes)
    # Each added middleware wraps the ones before: requests meet them from the last added on.
    app.add_middleware(RequestGate, settings=settings, routes=routes.every_route())
    if settings.api_keys:
        app.add_middleware(KeyCheck, settings=settings, writes=routes.writes.routes, open_routes=routes.probes.routes)
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(RequestMetrics, metrics=service.metrics, routes=routes.every_route())
    return app
