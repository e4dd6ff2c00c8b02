"""Per-user serving state behind one small interface, with three backends: in memory (the
Python API's default), SQLite (a run's ``serving.db``, durable) and Redis (shared by processes).

Per user the store keeps the recurrent state (bytes, with the fingerprint of the weights that
computed it), the last event time, and every applied event (item id, time, optional client id),
from which seen items, recent events (explanations) and states under new weights (reload) come.

Every write goes through :meth:`UserStore.transact`: the store reads the users' records, calls
``compute`` with them, and writes what it returns atomically, so updates of one user are
serialised even across processes (SQLite: ``BEGIN IMMEDIATE``; Redis: ``WATCH``/``MULTI`` with a
retry when another process changed a watched user in between).

>>> store = open_store("sqlite:///serving.db")                                    # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's own busy wait alone
    fcntl = None

log = logging.getLogger("interestevo.serving")


@dataclass
class UserRecord:
    state: bytes  # the recurrent state, float32, as encoded by the service
    fingerprint: str  # of the weights that computed ``state``
    last_time: int  # unix seconds of the last applied event
    num_events: int


@dataclass
class StoredEvent:
    item: str  # the item's original id, as text: stable across catalogues (fine-tuning grows them)
    time: int
    id: str | None = None


@dataclass
class Snapshot:
    """What ``compute`` sees inside a transaction."""

    records: dict[str, UserRecord]  # users without a record are absent
    known_ids: dict[str, set[str]]  # per user, those of the asked event ids already applied
    read_events: Callable[[str], list[StoredEvent]]  # every stored event of a user, oldest first


@dataclass
class Changes:
    """What ``compute`` returns: new records and the events to append, per user."""

    records: dict[str, UserRecord] = field(default_factory=dict)
    events: dict[str, list[StoredEvent]] = field(default_factory=dict)


class UserStore(ABC):
    """The interface the service needs; user ids are strings."""

    url: str
    #: what the backend raises when it cannot be reached or cannot write now (the service: HTTP 503)
    unavailable_errors: tuple[type[Exception], ...] = ()

    @abstractmethod
    def transact(self, users: list[str], event_ids: dict[str, list[str]],
                 compute: Callable[[Snapshot], tuple[Changes, object]]):
        """Read ``users``, ``changes, result = compute(snapshot)``, write ``changes`` atomically (and
        durably) and return ``result``. An exception in ``compute`` writes nothing. ``compute`` may
        run more than once (Redis retries it when a watched user changed meanwhile)."""

    @abstractmethod
    def records(self, users: list[str]) -> dict[str, UserRecord]:
        """The records of those users that have one (a consistent read, no lock)."""

    @abstractmethod
    def events(self, user: str, last: int | None = None) -> list[StoredEvent]:
        """The user's stored events, oldest first (only the ``last`` ones if given)."""

    @abstractmethod
    def seen_items(self, users: list[str]) -> dict[str, dict[str, int]]:
        """The item ids each user has events for, with the unix seconds of the latest one."""

    @abstractmethod
    def delete(self, user: str) -> bool:
        """Erase everything stored about ``user``, durably; True if there was anything."""

    @abstractmethod
    def user_ids(self) -> Iterator[str]:
        """Every user with a record."""

    @abstractmethod
    def count_users(self) -> int: ...

    @abstractmethod
    def size_bytes(self) -> int: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise one of :attr:`unavailable_errors` unless the store answers (the health check)."""

    def close(self) -> None:
        pass


def last_times(events) -> dict[str, int]:
    """Item id -> unix seconds of its latest event among ``events`` (StoredEvent, in order)."""
    last: dict[str, int] = {}
    for event in events:
        last[event.item] = max(event.time, last.get(event.item, event.time))
    return last


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names ("/abs/path" for sqlite:////abs/path, else relative);
    None for other URLs."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") and len(url) > len("sqlite:///") else None


def open_store(url: str, default_path: Path | None = None) -> UserStore:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` (SQLAlchemy's URL forms),
    ``redis://HOST:PORT/DB`` or ``memory://``; ``None``: SQLite at ``default_path``."""
    if url is None:
        if default_path is None:
            raise ValueError("--store: no store URL and no default path")
        return SQLiteStore(default_path)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path or path == ":memory:":
            raise ValueError(f"--store {url!r}: a SQLite store needs a file path (the state must survive restarts)")
        if "?" in path:
            raise ValueError(f"--store {url!r}: SQLite URL options (?...) are not supported; give the file's path only")
        if not Path(path).parent.is_dir():  # a typo must not create directories
            raise ValueError(f"--store {url!r}: the directory {Path(path).parent} does not exist")
        return SQLiteStore(Path(path))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    if url == MemoryStore.url:
        return MemoryStore()
    raise ValueError(f"--store {url!r}: expected sqlite:///relative.db, sqlite:////absolute/path.db, "
                     f"redis://HOST:PORT/DB or memory://")


# --------------------------------------------------------------------------------- memory
class MemoryStore(UserStore):
    """Everything in this process's memory: for the Python API, tests and one-off scoring. The
    same contract as the durable stores (atomic transactions, idempotent event ids), minus
    durability. One lock for reads and writes, so a read never sees half a transaction (and
    waits for a writer: a service under load wants SQLite or Redis, whose reads do not)."""

    url = "memory://"

    def __init__(self):
        self._records: dict[str, UserRecord] = {}
        self._events: dict[str, list[StoredEvent]] = {}
        self._lock = threading.RLock()

    def transact(self, users, event_ids, compute):
        with self._lock:
            records = {u: self._records[u] for u in users if u in self._records}
            known = {user: {e.id for e in self._events.get(user, ()) if e.id is not None} & set(ids)
                     for user, ids in event_ids.items()}
            changes, result = compute(Snapshot(records, known, lambda user: list(self._events.get(user, ()))))
            for user, record in changes.records.items():
                self._records[user] = record
            for user, events in changes.events.items():
                self._events.setdefault(user, []).extend(events)
        return result

    def records(self, users):
        with self._lock:
            return {u: self._records[u] for u in users if u in self._records}

    def events(self, user, last=None):
        with self._lock:
            events = self._events.get(user, [])
            return list(events if last is None else events[len(events) - min(last, len(events)):])

    def seen_items(self, users):
        with self._lock:
            return {user: last_times(self._events.get(user, ())) for user in users}

    def delete(self, user):
        with self._lock:
            found = self._records.pop(user, None) is not None
            return (self._events.pop(user, None) is not None) or found

    def user_ids(self):
        with self._lock:
            return iter(sorted(self._records))

    def count_users(self):
        return len(self._records)

    def size_bytes(self):
        with self._lock:
            return sum(len(r.state) for r in self._records.values()) + \
                sum(len(e.item) + 16 for events in self._events.values() for e in events)

    def ping(self):
        pass


# --------------------------------------------------------------------------------- SQLite
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user TEXT PRIMARY KEY, state BLOB NOT NULL, fingerprint TEXT NOT NULL,
    last_time INTEGER NOT NULL, num_events INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    user TEXT NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL, time INTEGER NOT NULL, event_id TEXT,
    PRIMARY KEY (user, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS event_ids ON events (user, event_id) WHERE event_id IS NOT NULL;
"""


class SQLiteStore(UserStore):
    """The embedded default: one file, WAL mode, one fsynced transaction per request.

    ``BEGIN IMMEDIATE`` takes the write lock before reading, so two processes on one file
    serialise their updates too. ``secure_delete`` overwrites a forgotten user's bytes.

    SQLite's busy handler polls with sleeps of up to 100 ms, so a process that writes without pause
    can starve another for seconds (measured: 4.6 s for one transaction). Writers therefore queue
    on an ``flock`` of ``<file>-writer`` first, which wakes a waiter as soon as it is released.

    Checkpoints (copying the WAL's pages back into the file) run in a background thread on a
    connection of its own, which SQLite lets run beside the writer; the commit of a request would
    otherwise pay for them (measured: 51 ms of a 500-event commit, 15 ms without). SQLite's own
    checkpoint after :attr:`WAL_BACKSTOP_PAGES` pages stays as a backstop should that thread lag.
    """

    unavailable_errors = (sqlite3.OperationalError,)  # locked past the timeout, disk full, I/O errors
    WAL_BACKSTOP_PAGES = 20_000  # 80 MB of 4 KiB pages
    CHECKPOINT_PAUSE_S = 0.05  # between two background checkpoints while writes keep coming
    # SQLite's default page cache is 2 MB; a store of many users is far larger, and the users of a
    # batch lie on random pages. A larger cache and reads through a memory map (no read() call per
    # page) took 500-event batches of random known users from ~42 to ~34 ms (AMD EPYC Zen 5).
    CACHE_KIB = 64 * 1024
    MMAP_BYTES = 256 * 1024 * 1024

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"--store {self.url}: {self.path} is not a file")
        self._lock = threading.Lock()  # the writer's connection, used from any thread, one statement at a time
        self._read_lock = threading.Lock()  # the reader's
        try:
            self._db = self._connect("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON", "foreign_keys=ON",
                                     f"wal_autocheckpoint={self.WAL_BACKSTOP_PAGES}")
            self._db.executescript(_SCHEMA)
            # Reads outside transactions (recommendations, from the event loop) have a connection of
            # their own: in WAL mode it reads the last commit while a writer works, instead of
            # waiting for the writer's lock.
            self._reader = self._connect("query_only=ON")
        except sqlite3.DatabaseError as error:
            raise ValueError(f"--store {self.url}: not a usable SQLite database ({error})") from None
        writer_lock = self.path.with_name(self.path.name + "-writer")
        self._writer_fd = os.open(writer_lock, os.O_RDWR | os.O_CREAT, 0o600) if fcntl else None
        self._checkpoint_lock = threading.Lock()  # the background checkpoint, or delete's
        self._wrote, self._closing = threading.Event(), threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_in_background, daemon=True,
                                              name="interestevo-sqlite-checkpoint")
        self._checkpointer.start()

    def _connect(self, *pragmas: str) -> sqlite3.Connection:
        """A connection for any thread (each guarded by a lock of its own), with ``pragmas`` and
        the page cache and memory map every connection of a request gets."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in (*pragmas, f"cache_size=-{self.CACHE_KIB}", f"mmap_size={self.MMAP_BYTES}"):
            db.execute(f"PRAGMA {pragma}")
        return db

    def _checkpoint_in_background(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA synchronous=FULL")
            while self._wrote.wait() and not self._closing.is_set():
                self._wrote.clear()
                with self._checkpoint_lock:
                    try:  # PASSIVE: copies what it can without waiting for the writer or readers
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    except sqlite3.OperationalError as error:  # another process's checkpoint: retry later
                        log.debug("background checkpoint of %s: %s", self.path, error)
                        self._wrote.set()
                self._closing.wait(self.CHECKPOINT_PAUSE_S)
        finally:
            db.close()

    @contextlib.contextmanager
    def _exclusive_writer(self):
        """This thread, then this process, is the file's only writer until the block ends."""
        with self._lock:
            if self._writer_fd is None:
                yield
                return
            fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _transaction(self):
        """Committed (synchronous=FULL: on disk) when the block ends, rolled back if it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._wrote.set()

    def transact(self, users, event_ids, compute):
        with self._exclusive_writer(), self._transaction():
            snapshot = Snapshot(self._records(self._db, users), self._known_ids(event_ids),
                                lambda user: self._events(self._db, user, None))
            changes, result = compute(snapshot)
            self._write(changes)
        return result

    def _write(self, changes: Changes) -> None:
        self._db.executemany(
            "INSERT INTO users (user, state, fingerprint, last_time, num_events) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user) DO UPDATE SET state = excluded.state, fingerprint = excluded.fingerprint, "
            "last_time = excluded.last_time, num_events = excluded.num_events",
            [(u, r.state, r.fingerprint, r.last_time, r.num_events) for u, r in changes.records.items()])
        rows = []
        for user, events in changes.events.items():
            first = changes.records[user].num_events - len(events)
            rows += [(user, first + i, e.item, e.time, e.id) for i, e in enumerate(events)]
        self._db.executemany("INSERT INTO events (user, seq, item, time, event_id) VALUES (?, ?, ?, ?, ?)", rows)

    def records(self, users):
        with self._read_lock:
            return self._records(self._reader, users)

    @staticmethod
    def _records(db: sqlite3.Connection, users) -> dict[str, UserRecord]:
        out = {}
        for chunk in _chunks(list(users), 500):  # SQLite's bound-parameter limit
            marks = ",".join("?" * len(chunk))
            for user, state, fingerprint, last_time, num in db.execute(
                    f"SELECT user, state, fingerprint, last_time, num_events FROM users WHERE user IN ({marks})",
                    chunk):
                out[user] = UserRecord(state, fingerprint, last_time, num)
        return out

    def _known_ids(self, event_ids: dict[str, list[str]]) -> dict[str, set[str]]:
        known = {user: set() for user in event_ids}
        pairs = [(user, event_id) for user, ids in event_ids.items() for event_id in ids]
        for chunk in _chunks(pairs, 250):  # 2 parameters a pair, within SQLite's limit
            # One lookup in the (user, event_id) index per pair (CROSS JOIN keeps this order).
            values = ",".join(["(?, ?)"] * len(chunk))
            for user, event_id in self._db.execute(
                    f"SELECT e.user, e.event_id FROM (VALUES {values}) AS asked CROSS JOIN events AS e "
                    "ON e.user = asked.column1 AND e.event_id = asked.column2 AND e.event_id IS NOT NULL",
                    [value for pair in chunk for value in pair]):
                known[user].add(event_id)
        return known

    def events(self, user, last=None):
        with self._read_lock:
            return self._events(self._reader, user, last)

    @staticmethod
    def _events(db: sqlite3.Connection, user: str, last: int | None) -> list[StoredEvent]:
        if last is None:
            rows = db.execute("SELECT item, time, event_id FROM events WHERE user = ? ORDER BY seq",
                              (user,)).fetchall()
        else:
            rows = db.execute("SELECT item, time, event_id FROM events WHERE user = ? ORDER BY seq DESC "
                              "LIMIT ?", (user, last)).fetchall()[::-1]
        return [StoredEvent(item, time, event_id) for item, time, event_id in rows]

    def seen_items(self, users):
        with self._read_lock:
            out = {user: {} for user in users}
            for chunk in _chunks(list(users), 500):
                marks = ",".join("?" * len(chunk))
                for user, item, last in self._reader.execute(
                        f"SELECT user, item, MAX(time) FROM events WHERE user IN ({marks}) GROUP BY user, item",
                        chunk):
                    out[user][item] = last
            return out

    def delete(self, user):
        with self._exclusive_writer():
            with self._transaction():
                found = self._db.execute("DELETE FROM users WHERE user = ?", (user,)).rowcount
                found += self._db.execute("DELETE FROM events WHERE user = ?", (user,)).rowcount
            # Old page images stay in the WAL until a checkpoint copies them back: erase them too.
            with self._checkpoint_lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return found > 0

    def user_ids(self):
        with self._read_lock:
            users = [row[0] for row in self._reader.execute("SELECT user FROM users ORDER BY user")]
        return iter(users)

    def count_users(self):
        with self._read_lock:
            return self._reader.execute("SELECT COUNT(*) FROM users").fetchone()[0]

    def size_bytes(self):
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())

    def ping(self):
        with self._read_lock:
            self._reader.execute("SELECT COUNT(*) FROM users WHERE 0").fetchone()

    def close(self):
        self._closing.set()
        self._wrote.set()
        self._checkpointer.join()
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()
            if self._writer_fd is not None:
                os.close(self._writer_fd)
                self._writer_fd = None


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]


# ---------------------------------------------------------------------------------- Redis
class RedisStore(UserStore):
    """Users shared by several service processes or machines.

    Keys per user: a hash (state, fingerprint, last_time, num_events), a list of events and a set
    of applied event ids; every write changes the hash, so ``WATCH`` on the hashes of a request's
    users makes its transaction fail, and be retried on fresh data, when another process updated
    one of them in between: no update is lost. Durability is the server's: run it with
    ``--appendonly yes --appendfsync always`` for an fsync per write.
    """

    def __init__(self, url: str, prefix: str = "interestevo"):
        import redis

        self.url = url
        self.unavailable_errors = (redis.ConnectionError, redis.TimeoutError)
        try:  # a server that hangs must fail requests (503), not hold them forever
            self._redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        except ValueError as error:  # e.g. a port that is not a number
            raise ValueError(f"--store {url!r}: {error}") from None
        self._watch_error = redis.WatchError
        self._prefix = prefix
        try:
            self._redis.ping()
        except redis.RedisError as error:
            raise ValueError(f"--store {url}: cannot reach Redis ({error})") from None

    def _key(self, kind: str, user: str = "") -> str:
        return f"{self._prefix}:{kind}:{user}"

    def transact(self, users, event_ids, compute):
        keys = [self._key("user", u) for u in users]
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys)
                    snapshot = Snapshot(self._read(pipe, users, immediate=True), self._known_ids(pipe, event_ids),
                                        lambda user: self._events(pipe, user, None))
                    changes, result = compute(snapshot)
                    pipe.multi()
                    self._write(pipe, changes)
                    pipe.execute()
                    return result
                except self._watch_error:
                    continue  # another process updated one of these users: compute again on its data

    def _write(self, pipe, changes: Changes) -> None:
        for user, record in changes.records.items():
            pipe.hset(self._key("user", user), mapping={
                "state": record.state, "fingerprint": record.fingerprint,
                "last_time": record.last_time, "num_events": record.num_events})
            pipe.sadd(self._key("users"), user)
        for user, events in changes.events.items():
            if events:
                pipe.rpush(self._key("events", user), *[_encode_event(e) for e in events])
                ids = [e.id for e in events if e.id is not None]
                if ids:
                    pipe.sadd(self._key("ids", user), *ids)

    def records(self, users):
        return self._read(self._redis, users)

    def _read(self, client, users, immediate: bool = False) -> dict[str, UserRecord]:
        if not users:
            return {}
        if immediate:  # a pipeline after WATCH runs each command at once
            rows = [client.hgetall(self._key("user", u)) for u in users]
        else:
            pipe = client.pipeline(transaction=False)
            for user in users:
                pipe.hgetall(self._key("user", user))
            rows = pipe.execute()
        return {user: UserRecord(row[b"state"], row[b"fingerprint"].decode(), int(row[b"last_time"]),
                                 int(row[b"num_events"]))
                for user, row in zip(users, rows) if row}

    def _known_ids(self, client, event_ids) -> dict[str, set[str]]:
        known = {}
        for user, ids in event_ids.items():
            ids = list(ids)
            flags = client.smismember(self._key("ids", user), ids) if ids else []
            known[user] = {i for i, flag in zip(ids, flags) if flag}
        return known

    def events(self, user, last=None):
        return self._events(self._redis, user, last)

    def _events(self, client, user: str, last: int | None) -> list[StoredEvent]:
        if last == 0:  # -0 would be the list's start: every event
            return []
        start = 0 if last is None else -last
        return [_decode_event(raw) for raw in client.lrange(self._key("events", user), start, -1)]

    def seen_items(self, users):
        return {user: last_times(self._events(self._redis, user, None)) for user in users}

    def delete(self, user):
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("user", user), self._key("events", user), self._key("ids", user))
            pipe.srem(self._key("users"), user)
            removed, _ = pipe.execute()
        return removed > 0

    def user_ids(self):
        return iter(sorted(m.decode() for m in self._redis.sscan_iter(self._key("users"), count=1000)))

    def count_users(self):
        return self._redis.scard(self._key("users"))

    def size_bytes(self):
        return int(self._redis.info("memory")["used_memory"])

    def ping(self):
        self._redis.ping()

    def close(self):
        self._redis.close()


def _encode_event(event: StoredEvent) -> str:
    return json.dumps([event.item, event.time, event.id])


def _decode_event(raw: bytes) -> StoredEvent:
    item, time, event_id = json.loads(raw)
    return StoredEvent(item, time, event_id)
