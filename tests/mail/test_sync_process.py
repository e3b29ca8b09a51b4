"""The sync's process: its helper processes start light, and its process-wide settings have one owner that
puts them back once the last pass of the process ends."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from pathlib import Path

from crm_tui.mail.sync import process_tuning

ROOT = Path(__file__).resolve().parents[2]


def test_a_helper_process_loads_neither_the_database_layer_nor_imapclient_to_parse_headers() -> None:
    """What a helper imports before its first header batch: the package, its start, the header parser."""
    code = (
        "import sys; from crm_tui.mail.sync import helper_processes; import crm_tui.mail.headers; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    ).stdout.split()
    assert not {"sqlalchemy", "sqlmodel", "imapclient", "textual"} & set(loaded), loaded


def test_the_settings_stay_tuned_until_the_last_pass_of_the_process_ends() -> None:
    """Two accounts syncing side by side: the first to finish does not put the settings back under the
    other; the last one puts back what was there before either."""
    before_threshold, before_interval = gc.get_threshold(), sys.getswitchinterval()
    tuned_interval = min(before_interval, process_tuning.SWITCH_INTERVAL)
    first_in, first_may_end = threading.Event(), threading.Event()

    def first_pass() -> None:
        with process_tuning.tuned_for_a_pass():
            for _ in process_tuning.quick_handoffs([1]):
                first_in.set()
                first_may_end.wait(10)

    first = threading.Thread(target=first_pass)
    first.start()
    assert first_in.wait(10)
    with process_tuning.tuned_for_a_pass():
        for _ in process_tuning.quick_handoffs([1]):
            first_may_end.set()
            first.join(10)
            assert not first.is_alive()
            assert gc.get_threshold() == process_tuning.GC_THRESHOLD, "the first pass ended, this one runs"
            assert sys.getswitchinterval() == tuned_interval
    assert gc.get_threshold() == before_threshold
    assert sys.getswitchinterval() == before_interval
