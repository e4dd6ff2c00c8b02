"""Serving: live per-user interest state (:class:`InterestTracker`), the stores that keep it
durable (:mod:`.store`), and the HTTP service behind ``interestevo serve`` (:mod:`.app`, which
needs ``pip install "interestevo[serve]"``)."""
from .tracker import InterestTracker, Recommendations, UnknownItem, UnknownUserError

__all__ = ["InterestTracker", "Recommendations", "UnknownItem", "UnknownUserError"]
