"""Serving: the one engine (:class:`InterestTracker`) over the stores that keep per-user state
(:mod:`.store`: memory, SQLite, Redis), and the HTTP service behind ``interestevo serve``
(:mod:`.http`, which needs the ``serve`` extra)."""
from .served import ServedModel
from .store import MemoryStore, UserStore, open_store
from .tracker import (Event, InterestTracker, NoEventsError, OutOfOrderError, RecommendRequest, TooEarlyError,
                      UnknownItemError)

__all__ = ["Event", "InterestTracker", "MemoryStore", "NoEventsError", "OutOfOrderError", "RecommendRequest",
           "ServedModel", "TooEarlyError", "UnknownItemError", "UserStore", "open_store"]
