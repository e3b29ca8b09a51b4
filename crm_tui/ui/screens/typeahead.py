"""Keys typed ahead of a screen change reach the screen the user sees next (every crm-tui screen and dialog)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import events

from crm_tui.ui.widgets.guard import ReportsErrors

if TYPE_CHECKING:
    from textual.screen import Screen

    # The type checker sees the mixin as the screen it always sits on.
    _Screen = Screen[Any]
else:
    _Screen = object

MAX_REDELIVERIES = 10  # refreshes a typed-ahead key waits for the new screen's focus before it is let go


class FollowsTypeahead(ReportsErrors, _Screen):
    """Screen mixin: keys typed ahead of a screen change reach the screen the user sees next.

    Textual hands each key to the widget focused when the key *arrives*, and keys bubble through the screen
    before the app runs the binding of an earlier key. A fast typist's "n Lena<Tab>Vogel" therefore sent "Lena"
    through the list under the new form, and the app then dropped it. Each key is marked with the screen it
    passed; the app (``CrmApp._on_key``) posts a key again when that screen is no longer in front, and a screen
    whose focus is not placed yet hands it on after the next refresh, so it lands where the user now types.

    Every crm-tui screen has it, and with it ``ReportsErrors``: an error in a handler is a notification.
    """

    def on_key(self, event: events.Key) -> None:
        app = self.app
        event.crm_screen = self  # type: ignore[attr-defined]  # the app reads the mark (CrmApp._on_key); Key has no slot for it
        tries = getattr(event, "tries", 0)
        if app.screen is not self or tries >= MAX_REDELIVERIES:
            return
        if self.focused is None and bool(getattr(self, "AUTO_FOCUS", None)):
            event.stop()
            event.prevent_default()
            app.call_after_refresh(app.post_message, typed_again(event, app))


def typed_again(event: events.Key, app: Any) -> events.Key:
    """A fresh copy of ``event`` for the app to deliver again, sent by the app as the terminal's keys are
    (a key sent by a screen would stop bubbling at that screen and never reach the app's bindings)."""
    # A plain Key (a subclass would change the handler name Textual dispatches to), counting its deliveries.
    fresh = events.Key(event.key, event.character)
    fresh.tries = getattr(event, "tries", 0) + 1  # type: ignore[attr-defined]  # a mark of ours on Textual's Key
    fresh.set_sender(app)
    return fresh
