"""Who holds a sync's lock or an outbox item (host:pid), and whether that process runs: one helper in core,
used by the sync and the outbox alike."""

from __future__ import annotations

import os
import socket
import subprocess

from crm_tui.core import holders


def test_a_process_of_this_host_is_asked_one_of_another_host_cannot_be() -> None:
    me = holders.holder()
    assert me == f"{socket.gethostname()}:{os.getpid()}"
    assert holders.holder_alive(me) is True
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert holders.holder_alive(f"{socket.gethostname()}:{gone.pid}") is False
    assert holders.holder_alive(f"other-{socket.gethostname()}:{os.getpid()}") is None
    assert holders.holder_alive(None) is None and holders.holder_alive("") is None
    assert holders.holder_alive(f"{socket.gethostname()}:not-a-pid") is None
