"""First-run benchmark: a fresh clone, `./scripts/run --demo`, until the app's first screen is painted.

    python benchmarks/first_run.py            # median of 3 fresh clones, package caches warm; then 1 cold
    python benchmarks/first_run.py --tiny     # one warm run (CI: proves the script runs)

Each run clones this checkout's HEAD into a new folder (so nothing of .venv carries over), starts
`./scripts/run --demo` in a real terminal (tmux, 160x48) and reads the screen every 50 ms until the app shows
its mode bar and its footer. That includes making .venv, installing the locked dependencies with uv
(scripts/_venv.sh), building the demo database and starting the app. "Warm" is a second clone on a machine
where uv and its package cache are already in the user's cache folder; "cold" gives the run an empty cache
folder (XDG_CACHE_HOME, PIP_CACHE_DIR), so uv itself and every package come from the registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAINTED = ("1 Inbox", "^q Quit")  # the mode bar and the footer: the first screen is on the terminal


def _screen(session: str) -> str:
    result = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return result.stdout


def one_run(cold: bool, timeout: float = 300.0) -> float:
    with tempfile.TemporaryDirectory(prefix="crm-tui-first-run-") as temporary:
        folder = Path(temporary)
        checkout = folder / "crm-tui"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("CRM_TUI_", "VIRTUAL_ENV"))
        }
        if cold:
            env["XDG_CACHE_HOME"] = str(folder / "cache")
            env["PIP_CACHE_DIR"] = str(folder / "cache" / "pip")
            env.pop("UV_CACHE_DIR", None)
        session = f"crm-tui-first-run-{os.getpid()}"
        command = f"./scripts/run --demo --home {folder / 'home'}; sleep 600"
        started = time.perf_counter()
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "160",
                "-y",
                "48",
                "-c",
                str(checkout),
                command,
            ],
            check=True,
            env=env,
        )
        try:
            while True:
                screen = _screen(session)
                if all(marker in screen for marker in PAINTED):
                    return time.perf_counter() - started
                if time.perf_counter() - started > timeout:
                    raise TimeoutError(
                        f"no first screen after {timeout:.0f} s; the terminal shows:\n{screen}"
                    )
                time.sleep(0.05)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="one warm run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("tmux") is None:
        print("first_run: tmux is needed (apt-get install tmux)", file=sys.stderr)
        return 1
    one_run(cold=False)  # fills the caches, as a first clone on this machine did
    warm = [one_run(cold=False) for _ in range(1 if args.tiny else args.repeat)]
    print(f"{'measurement':<52} {'median':>8} {'worst':>8}")
    print(
        f"{'fresh clone to first screen, caches warm, s':<52} {statistics.median(warm):>8.1f} {max(warm):>8.1f}"
    )
    if not args.tiny:
        cold = one_run(cold=True)
        print(f"{'fresh clone to first screen, caches empty, s':<52} {cold:>8.1f} {cold:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
