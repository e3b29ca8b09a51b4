"""Textual's OptionList, with paging that waits for the list's layout."""

from __future__ import annotations

from typing import Any

from textual.widgets import OptionList
from textual.widgets._select import SelectOverlay


def _move_page_when_laid_out(option_list: Any, direction: int, move_page: Any) -> None:
    """Textual 8.2 maps options to lines when the list is laid out; page up/down pressed before that (a
    board column reloaded a moment ago, a form's closed drop-down) raised KeyError. Here the lines are
    brought up to date first, and a list that has no layout yet stays where it is."""
    option_list._update_lines()
    highlighted = option_list.highlighted or 0
    if option_list.option_count and highlighted in option_list._index_to_line:
        move_page(option_list, direction)


class Options(OptionList):
    """An OptionList whose page up/down work right after its options were replaced, and whose up/down stop
    at the ends instead of wrapping round (k on a day's first activity then x marked its last one done)."""

    def _move_page(self, direction: int) -> None:
        _move_page_when_laid_out(self, direction, OptionList._move_page)

    def _enabled_beyond(self, direction: int) -> bool:
        if self.highlighted is None:
            return True
        indexes = range(self.highlighted + 1, self.option_count) if direction > 0 else range(self.highlighted)
        return any(not self.get_option_at_index(index).disabled for index in indexes)

    def action_cursor_down(self) -> None:
        if self._enabled_beyond(1):
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self._enabled_beyond(-1):
            super().action_cursor_up()


_installed = False


def page_drop_downs_when_laid_out() -> None:
    """A form's Select builds its own drop-down (Textual's SelectOverlay, an OptionList): give it the same
    paging (once per process; the app calls this as it starts)."""
    global _installed
    if _installed:
        return
    _installed = True
    textual_move_page = SelectOverlay._move_page
    SelectOverlay._move_page = lambda self, direction: _move_page_when_laid_out(  # type: ignore[method-assign]
        self, direction, textual_move_page
    )
