"""Argument types of the command line: each parses its text or says, in one line, what it expected."""
from __future__ import annotations

import argparse
import math


def bounded(parse, accept, expected: str):
    """An argparse type: ``parse`` the text and refuse values ``accept`` rejects, saying what was expected."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value
    return convert


fraction = bounded(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
share = bounded(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
non_negative_int = bounded(int, lambda v: v >= 0, "an integer >= 0")
positive_int = bounded(int, lambda v: v >= 1, "a positive integer")
positive_number = bounded(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def seed(text: str) -> int:
    from ..run.config import SEED_LIMIT  # not at import: it loads torch

    return bounded(int, lambda v: 0 <= v <= SEED_LIMIT, f"an integer in [0, {SEED_LIMIT}]")(text)
port = bounded(int, lambda v: 0 <= v <= 65535, "a TCP port (0-65535)")
