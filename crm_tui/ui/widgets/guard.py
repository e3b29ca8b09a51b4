"""Errors in the UI become one notification and a log entry, never a traceback on the screen."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import events
from textual._callback import invoke

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    # The type checker sees the mixin as the message pump it always sits on (the app, a screen, a widget).
    _Pump = MessagePump
else:
    _Pump = object


class ReportsErrors(_Pump):
    """Mixin for a Textual message pump (the app, a screen, a widget).

    Textual ends the app, painting a traceback with local variables (record contents), when a handler raises:
    a key's action, an event or message handler, a callback, a timer. Here such an error goes to the app's
    ``report_error`` (one error notification and an ERROR entry in the log file) and the pump goes on with the
    next message; so do the callbacks given to ``call_after_refresh`` and ``call_next``, which Textual runs
    outside the dispatch. Building a widget (Compose) stays fatal: a half-built screen cannot be used. What
    runs elsewhere (Textual's own widgets and workers) reaches the app's ``_handle_exception``, which ends the
    app with a one-line message and exit status 1.
    """

    async def _dispatch_message(self, message: Any) -> None:
        try:
            await super()._dispatch_message(message)
        except Exception as error:
            if isinstance(message, events.Compose) or not _report(self, error, message):
                raise

    def call_after_refresh(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        # Textual runs these outside the message dispatch: guarded here like a handler.
        return super().call_after_refresh(_guarded(self, partial(callback, *args, **kwargs)))

    def call_next(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().call_next(_guarded(self, partial(callback, *args, **kwargs)))

    def set_timer(self, delay: float, callback: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return super().set_timer(delay, None if callback is None else _guarded(self, callback), **kwargs)

    def set_interval(self, interval: float, callback: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        guarded = None if callback is None else _guarded(self, callback)
        return super().set_interval(interval, guarded, **kwargs)


def _report(pump: Any, error: Exception, during: Any) -> bool:
    try:
        app = pump.app
    except Exception:  # noqa: BLE001 - no app (any more): nothing to report to
        return False
    report = getattr(app, "report_error", None)
    if report is None:
        return False
    what = getattr(getattr(during, "func", during), "__qualname__", None) or type(during).__name__
    report(error, f"{type(pump).__name__} handling {what}")
    return True


def _guarded(pump: Any, callback: Callable[..., Any]) -> Callable[..., Any]:
    async def guarded() -> None:
        try:
            await invoke(callback)
        except Exception as error:
            if not _report(pump, error, callback):
                raise

    return guarded
