"""App benchmark: the Textual app on the scale database, measured with Pilot (headless).

    python benchmarks/app_scale.py            # 50k contacts, 20k deals, 100k activities, 100k mails
    python benchmarks/app_scale.py --tiny     # a few hundred rows: proves the script runs (CI)

Prints: time from process start until the contact list shows its first page (a whole new process, as a user
launches it), the time each mode takes to show its content, how long a search keystroke takes to update the
list, the time the deal screen of a deal with 2,000 mails and 500 activities takes to show its first page, and
the peak memory of the process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _context(home: Path) -> Any:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from crm_tui.core.clock import FixedClock
    from crm_tui.runtime.context import AppContext
    from crm_tui.runtime.paths import resolve_paths
    from crm_tui.runtime.settings import Settings

    return AppContext(
        paths=resolve_paths(home),
        settings=Settings(),
        clock=FixedClock(datetime(2026, 11, 22, 9, tzinfo=UTC)),
        zone=ZoneInfo("Europe/Berlin"),
    )


async def _until(pilot: Any, condition: Any, timeout: float = 30.0) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.005)
    return time.perf_counter() - started


def child_launch(home: Path, spawned: float) -> None:
    """Run in a fresh process: import, build, open the app; report when the first page is on screen."""
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.widgets.paged_table import PagedTable

    async def run() -> None:
        app = CrmApp(_context(home), manage_gc=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await _until(
                pilot, lambda: app.screen.query(PagedTable) and app.screen.query_one(PagedTable).row_count > 0
            )
            ready = time.time() - spawned
            print(
                json.dumps(
                    {"ready_s": ready, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
                )
            )

    asyncio.run(run())


MODE_KEYS = {"inbox": "1", "contacts": "2", "opportunities": "3", "calendar": "4", "settings": "5"}


DEAL_LABEL = "open deal screen (2,000 mails, 500 activities)"


async def open_deal_screen(app: Any, repeat: int) -> list[float]:
    """From the deal screen pushed (as Enter on a card does) until its facts and the first page of its
    timeline are painted, for the seeded deal with 2,000 mails and 500 activities (search_scale.BIG_DEAL_ID)."""
    from search_scale import BIG_DEAL_ID
    from textual.widgets import DataTable

    from crm_tui.ui.screens.deal import DealScreen

    times = []
    for _ in range(max(3, repeat)):
        screen = DealScreen(BIG_DEAL_ID)
        started = time.perf_counter()
        app.push_screen(screen)
        while app.screen is not screen:
            await asyncio.sleep(0.001)
        painted: list[float] = []
        original = screen._compositor_refresh

        def recording(original: Any = original, painted: list[float] = painted) -> None:
            original()
            painted.append(time.perf_counter())

        screen._compositor_refresh = recording  # type: ignore[method-assign]
        while screen.story is None or not screen.query_one("#timeline", DataTable).row_count:
            await asyncio.sleep(0.001)
        ready = time.perf_counter()
        while not painted or painted[-1] < ready:
            await asyncio.sleep(0.001)
        times.append(painted[-1] - started)
        screen._compositor_refresh = original  # type: ignore[method-assign]
        app.pop_screen()
        await asyncio.sleep(0.1)
    return times


def measure_in_process(home: Path, repeat: int) -> dict[str, Any]:
    from textual import events
    from textual.widgets import OptionList

    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.widgets.paged_table import PagedTable

    results: dict[str, Any] = {}
    pauses: list[float] = []
    gc_started: list[float] = []

    def gc_watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started.append(time.perf_counter())
        elif gc_started:
            pauses.append(time.perf_counter() - gc_started.pop())

    gc.callbacks.append(gc_watch)

    async def run() -> None:
        app = CrmApp(_context(home), manage_gc=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await _until(pilot, lambda: app.screen.query_one(PagedTable).row_count > 0)

            def has(selector: str, kind: type = OptionList) -> Any:
                return lambda: any(w.option_count for w in app.screen.query(selector).results(kind))

            checks = {
                "inbox": lambda: (
                    app.screen.query(PagedTable) and app.screen.query_one(PagedTable).row_count > 0
                ),
                "opportunities": has(".column-list"),
                "calendar": has(".day-list"),
                "settings": lambda: (
                    app.screen.query("#settings-table")
                    and app.screen.query_one("#settings-table").row_count > 0
                ),
                "contacts": lambda: (
                    app.screen.query(PagedTable) and app.screen.query_one(PagedTable).row_count > 0
                ),
            }
            for mode, done in checks.items():
                times = []
                for _ in range(repeat):
                    await app.switch_mode("settings" if mode != "settings" else "inbox")
                    await pilot.pause(0.3)
                    # Force a fresh screen, as the first visit makes.
                    app.remove_mode(mode)
                    app.add_mode(mode, CrmApp.MODES[mode])
                    key = MODE_KEYS[mode]
                    event = events.Key(key, key)
                    event.set_sender(app)
                    started = time.perf_counter()
                    app._driver.send_message(event)  # type: ignore[union-attr]  # as a user switches: by key
                    while app.current_mode != mode or app.screen.__class__ is not CrmApp.MODES[mode]:
                        await asyncio.sleep(0.001)
                    screen = app.screen
                    painted: list[float] = []
                    original = screen._compositor_refresh

                    def recording(original: Any = original, painted: list[float] = painted) -> None:
                        original()
                        painted.append(time.perf_counter())

                    screen._compositor_refresh = recording  # type: ignore[method-assign]
                    while not done():
                        await asyncio.sleep(0.002)
                    ready = time.perf_counter()
                    while not painted or painted[-1] < ready:
                        await asyncio.sleep(0.002)
                    times.append(painted[-1] - started)
                    screen._compositor_refresh = original  # type: ignore[method-assign]
                results[f"open {mode}"] = times
            table = app.screen.query_one(PagedTable)
            await pilot.press("slash")
            await pilot.pause(0.3)
            screen = app.screen
            painted: list[float] = []
            original_refresh = screen._compositor_refresh

            def recording_refresh() -> None:
                original_refresh()
                painted.append(time.perf_counter())

            screen._compositor_refresh = recording_refresh  # type: ignore[method-assign]
            latencies = []

            async def type_key(key: str, char: str | None) -> float:
                # As a terminal delivers a key: through the driver, without Pilot's wait-for-idle between keys.
                before = table.query_text
                event = events.Key(key, char)
                event.set_sender(app)
                started = time.perf_counter()
                app._driver.send_message(event)  # type: ignore[union-attr]
                while table.query_text == before or table._loading:
                    await asyncio.sleep(0.001)
                shown_at = time.perf_counter()
                while not painted or painted[-1] < shown_at:
                    await asyncio.sleep(0.001)
                return painted[-1] - started

            for word in ["fischer", "anna", "koch", "nord"][: max(1, repeat)]:
                for char in word:
                    latencies.append(await type_key(char, char))
                    if os.environ.get("CRM_TUI_BENCH_VERBOSE"):
                        print(
                            f"  key {char!r} after {table.query_text[:-1]!r}: {latencies[-1] * 1000:.1f} ms"
                        )
                    await asyncio.sleep(0.05)
                for _ in word:
                    await type_key("backspace", None)
                    await asyncio.sleep(0.05)
            results["search keystroke"] = latencies
            results[DEAL_LABEL] = await open_deal_screen(app, repeat)

    asyncio.run(run())
    gc.callbacks.remove(gc_watch)
    results["garbage collection pauses"] = pauses or [0.0]
    results["peak rss MiB (this process, incl. seeding)"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child-launch", metavar="HOME", help=argparse.SUPPRESS)
    parser.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_launch:
        child_launch(Path(args.child_launch), args.spawned)
        return 0

    from search_scale import SIZES, seed, tiny_sizes

    from crm_tui.core.db import open_database, sqlite_url

    sizes = tiny_sizes() if args.tiny else dict(SIZES)
    repeat = 1 if args.tiny else args.repeat
    with tempfile.TemporaryDirectory(prefix="crm-tui-app-bench-") as temporary:
        home = Path(temporary)
        db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
        started = time.perf_counter()
        seed(db, sizes, random.Random(7))
        db.dispose()
        # Seeding built millions of objects in this process that the app never has; collect them and keep the
        # survivors out of later collections, so GC passes over the seeding heap do not land in measurements.
        gc.collect()
        gc.freeze()
        print(
            f"seeded {', '.join(f'{v:,} {k}' for k, v in sizes.items())} in {time.perf_counter() - started:.1f} s"
        )
        launches = []
        for _ in range(repeat):
            spawned = time.time()
            output = subprocess.run(
                [sys.executable, __file__, "--child-launch", str(home), "--spawned", str(spawned)],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "CRM_TUI_HOME": str(home)},
            )
            if output.returncode != 0:
                print(output.stderr, file=sys.stderr)
                return 1
            launches.append(json.loads(output.stdout.strip().splitlines()[-1]))
        print(f"{'measurement':<44} {'median':>10} {'worst':>10}")
        ready = sorted(item["ready_s"] for item in launches)
        print(
            f"{'launch to first page (new process), s':<44} {ready[len(ready) // 2]:>10.2f} {ready[-1]:>10.2f}"
        )
        rss = max(item["rss_mib"] for item in launches)
        print(f"{'memory after launch (peak RSS), MiB':<44} {rss:>10.0f} {rss:>10.0f}")
        for label, values in measure_in_process(home, repeat).items():
            if isinstance(values, list):
                values = sorted(values)
                print(
                    f"{label + ', ms':<44} {values[len(values) // 2] * 1000:>10.1f} {values[-1] * 1000:>10.1f}"
                )
            else:
                print(f"{label:<44} {values:>10.0f} {values:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
