"""The demo data set: made on first use from a fixed seed relative to a given "today".

Same seed and same today (and the same pinned clock) give the same database. ``demo_exists`` is what every
``--demo`` start asks; the builder (``runtime/demo_builder.py``, which loads every record service) is imported
only when the demo is built.
"""

from __future__ import annotations

import random
from datetime import date, datetime, tzinfo

from sqlmodel import Session

from crm_tui.core import models as m

DEMO_MARKER = "demo_today"  # the AppMeta row written with the demo: the day it was built for


def demo_exists(session: Session) -> bool:
    return session.get(m.AppMeta, DEMO_MARKER) is not None


def build_demo(
    session: Session, *, today: date, now: datetime, zone: tzinfo, seed: int | None = None
) -> dict[str, int]:
    """Fill an empty database with the demo data set (inside the caller's transaction). Returns the counts."""
    # the builder loads every record service and the MIME parser: only when the demo is built (start-up)
    from crm_tui.runtime.demo_builder import DemoBuilder, load_words

    words = load_words()
    rng = random.Random(seed if seed is not None else int(words["seed"]))
    builder = DemoBuilder(session, rng, words, today=today, now=now, zone=zone)
    counts = builder.run()
    session.add(m.AppMeta(key=DEMO_MARKER, value=today.isoformat()))
    session.add(m.AppMeta(key="demo_seed", value=str(seed if seed is not None else words["seed"])))
    session.flush()
    return counts
