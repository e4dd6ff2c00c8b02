"""The ``serve``, ``forget`` and ``finetune`` subcommands: their options and what they run.

``interestevo.cli`` registers them with :func:`add_commands`; nothing here is imported until a
command runs, so the CLI works without the ``serve`` extra.
"""
from __future__ import annotations

import gc
import inspect
import json
import logging
import os
import shutil
import socket
import tempfile

from . import args as types

log = logging.getLogger("interestevo.serving")


def add_commands(commands) -> None:
    """Add the subcommands to ``commands`` (the CLI's ``add_subparsers`` object)."""
    serve = commands.add_parser("serve", help="serve a run over HTTP: events in, recommendations out",
                                description="Serve a trained run: a JSON API with durable per-user state "
                                            "(the serve extra; in the clone: pip install --no-build-isolation "
                                            "-e \".[serve]\").")
    serve.add_argument("run", metavar="RUN", help="run directory (from interestevo train)")
    serve.add_argument("--model", help="which model of the run (default: its best neural model by NDCG@10)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine "
                                                           "only)")
    serve.add_argument("--port", type=types.port, default=8000,
                       help="TCP port; 0 picks a free one and logs which (default: %(default)s)")
    serve.add_argument("--store", metavar="URL", help="sqlite:///relative.db, sqlite:////absolute/path.db or "
                                                      "redis://HOST:PORT/DB (default: sqlite in RUN/serving.db)")
    serve.add_argument("--api-key-file", metavar="F", help="file of API keys, one a line: write routes (and "
                                                           "reads, unless --public-reads) need 'Authorization: "
                                                           "Bearer KEY'")
    serve.add_argument("--public-reads", action="store_true", help="with --api-key-file: reads need no key")
    serve.add_argument("--max-body-bytes", type=types.positive_int, default=4 * 1024 * 1024,
                       help="larger requests get 413 (default: %(default)s)")
    serve.add_argument("--batch-window-ms", type=float, default=2.0,
                       help="how long concurrent recommendation requests are gathered into one model call "
                            "(default: %(default)s)")
    serve.add_argument("--torch-threads", type=types.positive_int, default=1,
                       help="intra-op threads of the model (default: %(default)s: requests are small batches, and "
                            "several service processes share the cores better this way)")
    serve.add_argument("--import-log", action="store_true",
                       help="first store the users of the run's training log that the store lacks, with their "
                            "logged events, so that they get recommendations from their history, not cold starts")
    serve.add_argument("--workers", type=types.positive_int, default=1,
                       help="service processes on the one port, sharing the store (default: %(default)s). With "
                            "more than one, reload (SIGHUP to the main process, or POST /v1/admin/reload) "
                            "replaces each process by one with the run's newest checkpoint, one at a time")
    serve.set_defaults(handler=run_serve)

    forget = commands.add_parser("forget", help="erase a user's events and state from a run's store")
    forget.add_argument("run", metavar="RUN")
    forget.add_argument("--user", required=True, help="original user id")
    forget.add_argument("--store", metavar="URL", help="the store serve uses, if not the run's serving.db "
                                                       "(sqlite:///PATH or redis://HOST:PORT/DB)")
    forget.set_defaults(handler=run_forget)

    finetune = commands.add_parser("finetune", help="continue training a run's best checkpoint on new events")
    finetune.add_argument("run", metavar="RUN")
    finetune.add_argument("--data", required=True, metavar="NEW_EVENTS",
                          help="new events (csv/tsv/parquet with the run's user, item and time columns)")
    finetune.add_argument("--out", required=True, metavar="RUN2", help="new run directory (must not exist)")
    finetune.add_argument("--model", help="which model of the run (default: its best neural model)")
    finetune.add_argument("--epochs", type=types.positive_int, default=1, help="(default: %(default)s)")
    finetune.add_argument("--lr", type=types.positive_number, help="(default: the run's)")
    finetune.set_defaults(handler=run_finetune)




#: how ``run_serve`` hands its arguments to the worker processes of ``--workers N``
WORKER_SETTINGS_ENV = "INTERESTEVO_SERVE_WORKER"


def run_serve(args) -> int:
    try:
        import uvicorn

        from ..serving.http import read_api_keys
    except ImportError as error:
        raise ValueError(f"serve needs the serve extra ({error.name} is missing): "
                         f"in the clone, pip install --no-build-isolation -e \".[serve]\"") from None
    if not 0 <= args.batch_window_ms <= 1000:
        raise ValueError(f"--batch-window-ms must be between 0 and 1000, got {args.batch_window_ms}")
    if args.api_key_file:
        read_api_keys(args.api_key_file)  # a bad file fails here, before any model loads
    elif args.public_reads:
        raise ValueError("--public-reads only applies with --api-key-file (without it every route is open)")
    from ..run.layout import Run

    run = Run.open(args.run)
    if not args.import_log:  # a wrong URL or a missing store fails before the model loads
        _served_store(run, args.store).close()
    settings = {key: getattr(args, key) for key in ("run", "model", "store", "api_key_file", "public_reads",
                                                    "max_body_bytes", "batch_window_ms", "torch_threads",
                                                    "workers")}
    listening = _listening_socket(args.host, args.port)  # before the model loads: a taken port fails at once
    if args.import_log:  # once, before any service process starts
        _import_log(settings)
    port = listening.getsockname()[1]  # the one the system chose for --port 0
    if args.workers == 1:
        app = _started(build_app(settings))
        log.info("listening on http://%s:%d", args.host, port)
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[listening])
        return 0
    listening.close()  # uvicorn's supervisor binds the port again, for its processes to share
    if settings["model"] is None:  # every process serves the same model
        settings["model"] = run.best_model()
    log.info("starting %d service processes on http://%s:%d", args.workers, args.host, port)
    os.environ[WORKER_SETTINGS_ENV] = json.dumps(settings)
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # else the deployment's
    if own_metrics_dir:  # each process's counts go to files there; a scrape adds them up
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="interestevo-metrics-")
    options = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:  # uvicorn >= 0.35
        options["timeout_worker_healthcheck"] = 600  # a process is ready once its model has loaded
    try:
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=args.workers, host=args.host, port=port,
                    log_level="warning", access_log=False, **options)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
    return 0


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds: SO_REUSEADDR), or a one-line error
    naming the option: an unknown host or a port in use must not surface after start-up."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise ValueError(f"--host {host!r}: not an address of this machine ({error.strerror})") from None
    listening = socket.socket(family, kind, proto)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(address)
        listening.listen(socket.SOMAXCONN)  # from here connections queue until the app answers them
    except OSError as error:
        listening.close()
        raise ValueError(f"--host {host} --port {port}: cannot listen there ({error.strerror})") from None
    return listening


def _import_log(settings: dict) -> None:
    from ..run.layout import Run
    from ..serving.tracker import build_run_store

    run = Run.open(settings["run"])
    users, events = build_run_store(run, run.dataset().inter, settings["model"], settings["store"])
    log.info("imported %d users with %d events from the log of %s (users the store had are kept)",
             users, events, run.root)


def build_app(settings: dict):
    """The service's app for ``serve``'s settings (one process's model, engine and store)."""
    import torch

    from ..serving.http import Service, ServiceSettings, create_app, read_api_keys
    from ..run.layout import Run
    from ..serving.tracker import InterestTracker

    torch.set_num_threads(settings["torch_threads"])
    run = Run.open(settings["run"])
    keys = read_api_keys(settings["api_key_file"]) if settings["api_key_file"] else ()
    tracker = InterestTracker.open(run, settings["model"], _served_store(run, settings["store"]))
    served, store = tracker.served, tracker.store
    service_settings = ServiceSettings(api_keys=keys, api_key_file=settings["api_key_file"],
                                       public_reads=settings["public_reads"],
                                       max_body_bytes=settings["max_body_bytes"],
                                       batch_window_s=settings["batch_window_ms"] / 1000,
                                       processes=settings["workers"])
    log.info("serving %s of %s (weights %s) with store %s", served.name, run.root, served.fingerprint,
             store.url.split("@")[-1])
    return create_app(Service(tracker, service_settings))


def _served_store(run, url: str | None):
    """The run's serving.db (which must be there), or the store ``--store`` names: a service may
    start on a new one, whose users arrive with their events (or with --import-log)."""
    from ..serving.store import open_store
    from ..serving.tracker import open_run_store

    return open_run_store(run) if url is None else open_store(url, run.store_path)


def worker_app():
    """The app of one process of ``serve --workers N`` (uvicorn's factory, in each process)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return _started(build_app(json.loads(os.environ[WORKER_SETTINGS_ENV])))


#: net allocations between two young-generation collections (Python's default: 700)
GC_YOUNG_THRESHOLD = 50_000


def _started(app):
    """``app``, once the objects made at start-up (model, catalogue, store: they live as long as the
    process) are out of the cyclic garbage collector's passes, whose pauses would show in the
    latency tail. A request of 500 events holds a few thousand objects while it is computed, so
    at Python's default threshold the collector ran several times per request and scanned them all
    (1.3 ms of a batch's 18 ms of CPU, AMD EPYC Zen 5); at 50,000 it did not run once in 200 batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return app


def run_forget(args) -> int:
    """Erase the user's events and state from the run's store (or ``--store``)."""
    from ..run.layout import Run
    from ..serving.steps import item_key
    from ..serving.tracker import open_run_store

    run = Run.open(args.run)
    store = open_run_store(run, args.store)
    try:
        erased = store.delete(item_key(args.user))
    finally:
        store.close()
    where = store.url.split("@")[-1]
    if erased:
        print(f"forgot user {args.user} in {where}")
    else:
        print(f"user {args.user} was not in {where}; nothing to forget")
    print("the models have no per-user parameters; the user's events in the files you trained on are yours to "
          "edit (serve --import-log and finetune read them again)")
    return 0


def run_finetune(args) -> int:
    from ..experiment.finetune import finetune_run

    result = finetune_run(args.run, args.data, args.out, model=args.model, epochs=args.epochs, lr=args.lr)
    print(result.summary())
    return 0
