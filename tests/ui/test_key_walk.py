"""A seeded random walk over every mode: 2,000 keys per seed, drawn from every key any screen declares plus the
keys a user types into forms. After every key the app is alive; no key may bring an error notification or an
ERROR in the log. A failing seed prints its key sequence, to replay it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen

import crm_tui.ui.screens
from crm_tui.ui.app import CrmApp
from tests.ui.keywalk import (
    SKIPPED_KEYS,
    RecordingApp,
    Watch,
    capture_errors,
    quick_press,
    settle,
    use_recording_programs,
)

KEYS_PER_SEED = int(__import__("os").environ.get("WALK_KEYS", "2000"))
TYPED = [
    "a",
    "e",
    "x",
    "1",
    "space",
    "backspace",
    "at",
    "full_stop",
    "minus",
    "escape",
    "enter",
    "tab",
    "shift+tab",
]
MOVES = ["up", "down", "left", "right", "pageup", "pagedown", "home", "end", "j", "k", "h", "l"]


def declared_keys() -> list[str]:
    """Every key of the app and of every screen class in crm_tui.ui.screens (read from their bindings)."""
    keys: set[str] = set(CrmApp._merged_bindings.key_to_bindings) if CrmApp._merged_bindings else set()
    for info in pkgutil.iter_modules(crm_tui.ui.screens.__path__):
        module = importlib.import_module(f"crm_tui.ui.screens.{info.name}")
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__.startswith("crm_tui."):
                merged = cls._merged_bindings
                if merged is not None:
                    keys.update(merged.key_to_bindings)
    return sorted(keys - SKIPPED_KEYS)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_random_walk_over_every_mode(
    seed: int, app: RecordingApp, pilot: Any, caplog: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    use_recording_programs(monkeypatch, tmp_path / "programs")
    capture_errors(caplog)
    pool = declared_keys()
    assert len(pool) >= 60, pool  # the bindings were found: the walk cannot pass by pressing nothing
    weighted = pool * 3 + TYPED + MOVES * 2
    rng = random.Random(seed)
    walk = [rng.choice(weighted) for _ in range(KEYS_PER_SEED)]
    problems: list[str] = []
    await settle(pilot)
    watch = Watch(app, caplog)
    problems.extend(f"starting the demo: {error}" for error in watch.errors_since())
    for step, key in enumerate(walk):
        await quick_press(pilot, key)
        if step % 25 == 24:
            await settle(pilot)
        if app._exit or not app.is_running:
            problems.append(f"key {step} ({key}): the app ended")
            break
        for error in watch.errors_since():
            problems.append(f"key {step} ({key}) on {type(app.screen).__name__}: {error}")
        if problems:
            break
    await settle(pilot)
    problems.extend(f"after the walk: {error}" for error in watch.errors_since())
    print(f"\nrandom walk, seed {seed}: {len(walk)} keys from a pool of {len(pool)} declared keys")
    if problems:
        done = walk[: int(problems[0].split()[1]) + 1] if problems[0].startswith("key ") else walk
        pytest.fail(f"seed {seed}: " + "\n".join(problems) + f"\nkeys pressed: {' '.join(done)}")
