"""Serving a newer checkpoint without stopping: in this process, or (``serve --workers N``) by
asking uvicorn's supervisor to replace every process; ``SIGHUP`` reloads too, as daemons do."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from fastapi import HTTPException
from starlette.responses import JSONResponse

from ...run.layout import Run
from ..served import ServedModel
from .auth import read_api_keys
from .schemas import ReloadIn
from .service import Service

log = logging.getLogger("interestevo.serving")


class Reloader:
    def __init__(self, service: Service):
        self.service = service
        self._lock = asyncio.Lock()
        self.restart_requested = False  # serve --workers: this process asked for a restart (it will be replaced)

    async def __call__(self, request: ReloadIn) -> dict | JSONResponse:
        if self.service.settings.processes > 1:
            return self._restart_processes(request)
        return await self.reload(request.run, request.model)

    async def reload(self, run: str | None = None, model: str | None = None) -> dict:
        """Load the newest checkpoint (of ``run``, default the served one) beside the running model,
        swap it in between two requests, then recompute every user's state under it in chunks
        (requests keep being answered; a user not yet recomputed is recomputed when touched)."""
        service, settings = self.service, self.service.settings
        tracker = service.tracker
        async with self._lock:
            current = tracker.served
            # Keys first: a bad key file fails the reload before anything changes.
            keys = read_api_keys(settings.api_key_file) if settings.api_key_file else ()
            served = await asyncio.to_thread(_load, run or current.run, model or current.name)
            settings.api_keys = keys
            await service.run(tracker.swap, served)
            users = await service.run(tracker.user_ids)
            recomputed = unknown = 0
            for start in range(0, len(users), settings.recompute_chunk):
                changed, skipped = await service.run(tracker.recompute, users[start:start + settings.recompute_chunk])
                recomputed, unknown = recomputed + changed, unknown + skipped
            service.metrics.reloads.inc()
            log.info("reloaded %s from %s (weights %s): %d user states recomputed", served.name, served.run,
                     served.fingerprint, recomputed)
            if unknown:
                log.warning("%d stored events name items that %s's catalogue lacks: the recomputed states "
                            "leave them out (the events stay stored)", unknown, served.run)
            return {"model": served.name, "run": str(served.run), "fingerprint": served.fingerprint,
                    "previous_fingerprint": current.fingerprint, "users": len(users), "recomputed": recomputed,
                    "events_of_unknown_items": unknown}

    def _restart_processes(self, request: ReloadIn) -> JSONResponse:
        """With several processes, each one must load the checkpoint: uvicorn's supervisor replaces
        them one at a time on SIGHUP (each new one loads the newest checkpoint; a state computed by
        the old weights is recomputed when its user is next touched)."""
        served, processes = self.service.tracker.served, self.service.settings.processes
        if (request.run is not None and Path(request.run).resolve() != served.run.resolve()) or \
                request.model not in (None, served.name):
            raise HTTPException(422, f"with {processes} service processes a reload serves the newest checkpoint "
                                     f"of {served.name} in {served.run}; restart serve for another run or model")
        # This process is replaced by that restart: asking again from it would queue another one.
        already = self.restart_requested
        if not already:
            os.kill(os.getppid(), signal.SIGHUP)
            self.restart_requested = True
            self.service.metrics.reloads.inc()
        return JSONResponse({"model": served.name, "run": str(served.run), "processes": processes,
                             "restarting": True, "already_requested": already,
                             "previous_fingerprint": served.fingerprint}, status_code=202)

    def reload_on_sighup(self) -> None:
        """From now on, SIGHUP to this process reloads (where this thread may handle signals)."""
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload_logged()))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            pass

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as error:  # a signal has no one to answer: say it in the log, keep serving
            log.error("reload on SIGHUP failed, still serving the previous model: %s", error)


def _load(run, model: str) -> ServedModel:
    return ServedModel.from_run(Run.open(run), model)
