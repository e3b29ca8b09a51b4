"""The running app and its context, typed, for screens, dialogs and widgets.

Textual types ``node.app`` as ``App[object]``; in crm-tui the app is always a ``CrmApp``. The app module imports
every screen, so this module names ``CrmApp`` for the type checker only: no import cycle at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from crm_tui.runtime.context import AppContext
    from crm_tui.ui.app import CrmApp


def crm_app(node: MessagePump) -> CrmApp:
    """The app ``node`` (a screen, a dialog, a widget) runs in, as the ``CrmApp`` it is."""
    return cast("CrmApp", node.app)


def app_context(node: MessagePump) -> AppContext:
    """The app's ``AppContext`` (settings, clock, database) as seen from ``node``."""
    return crm_app(node).context
