"""The header pass's reading: each batch of new mail's headers read from the server, on a reader thread that
reads batch k+1 while the pass stores batch k, and handed to the first helper process to decode."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from crm_tui.mail import imap_fetch
from crm_tui.mail.headers import header_rows
from crm_tui.mail.sync import helper_processes


def read_header_batch(
    client: Any, batch: list[int], items: list[str], use_pool: bool
) -> tuple[list[int], list[Any], Any]:
    """One batch of new mail's headers: the UIDs asked for, the server's replies (read, not decoded), and the
    first helper's future for their rows (``headers.header_rows``) when it is up, else None (the caller makes
    the rows). Decoding the replies in the helper leaves this process, which stores every row, only the
    reading (the decoding was a fifth of its header pass). One helper: a second one, started for this pass,
    made it slower (alternating runs), the cores being busy with this process, the first helper and the
    server."""
    replies = imap_fetch.receive_replies(client, imap_fetch.send(client, batch, items))
    pool = helper_processes.first_helper() if use_pool and replies else None
    return batch, replies, pool.submit(header_rows, replies, batch) if pool is not None else None


def read_header_batches(
    client: Any,
    batches: list[list[int]],
    items: list[str],
    *,
    use_pool: bool,
    after_last: Callable[[], None] | None = None,
) -> Any:
    """Yield each header batch as ``read_header_batch`` gives it. With several batches a reader thread
    fetches batch k+1 (and hands it to the parse process) while the caller stores batch k: the server's time
    to answer, half of a header FETCH, is hidden behind the writes. Only the reader uses the connection until
    this generator ends; an error in the reader is raised here. ``after_last`` runs once the last batch is
    read."""
    if len(batches) < 2:
        for batch in batches:
            yield read_header_batch(client, batch, items, use_pool)
        if after_last is not None:
            after_last()
        return
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def reader() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                handoff.put(("batch", read_header_batch(client, batch, items, use_pool)))
            if after_last is not None:
                after_last()
            handoff.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            handoff.put(("error", exc))

    thread = threading.Thread(target=reader, name="crm-tui header reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        # Let a reader blocked on a full hand-off finish: the connection is ours again after this.
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.05)
        thread.join()
