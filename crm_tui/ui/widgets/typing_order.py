"""Keys typed in a burst reach a text field in the order they were typed.

Textual hands a key to the focused field first, where a printable character is inserted at once; a key that is
one of the field's bindings (backspace, delete, the arrows, ctrl+w...) is not handled there but travels up to
the app, which runs the binding after the characters already queued behind it. Typed fast (a paste-like burst,
a quick correction: five backspaces and a new word), "fotos" + 5 backspaces + "speicher" became "fotosspe".
Here a field runs its own binding for such a key at once, in order; what it does not handle goes on as before.
Priority bindings (the app's and a form's) were already checked by the app before the field saw the key.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, TextArea

_installed = False


def _in_order(textual_on_key: Any) -> Any:
    async def on_key(self: Any, event: Any) -> None:
        if not event.is_printable:
            for binding in self._bindings.key_to_bindings.get(event.key, ()):
                if await self.app.run_action(binding.action, self):
                    event.stop()
                    event.prevent_default()
                    return
        await textual_on_key(self, event)

    return on_key


def keep_typing_in_order() -> None:
    """Install the in-order handling on Textual's Input and TextArea (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    # Textual's own classes are patched in place: there is no hook for a field's key handling.
    Input._on_key = _in_order(Input._on_key)  # type: ignore[method-assign]  # a patch of Textual's Input
    TextArea._on_key = _in_order(TextArea._on_key)  # type: ignore[method-assign]  # and of its TextArea
