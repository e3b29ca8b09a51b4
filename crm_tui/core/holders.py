"""Which process holds something (a sync's lock on an account, an outbox item being delivered), named as
``host:pid``, and whether that process still runs. Standard library only: core and mail use it alike."""

from __future__ import annotations

import os
import socket


def holder() -> str:
    """This process, as a lock or a claim names it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_alive(holder: str | None) -> bool | None:
    """Whether the process named ``host:pid`` still runs. Known only for a process of this host; None when
    it cannot be told (another host, or no holder named)."""
    if not holder:
        return None
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True
