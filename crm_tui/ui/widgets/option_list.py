"""Textual's OptionList, with paging that waits for the list's layout."""

from __future__ import annotations

from typing import Any

from textual.widgets import OptionList


def _move_page_when_laid_out(option_list: Any, direction: int, move_page: Any) -> None:
    """Textual 8.2 maps options to lines when the list is laid out; page up/down pressed before that (a
    board column reloaded a moment ago, a form's closed drop-down) raised KeyError. Here the lines are
    brought up to date first, and a list that has no layout yet stays where it is. Installed on OptionList
    itself: a form's drop-down (SelectOverlay) and the command palette's list (PageDown as a search is typed)
    are OptionLists too."""
    option_list._update_lines()
    highlighted = option_list.highlighted or 0
    if option_list.option_count and highlighted in option_list._index_to_line:
        move_page(option_list, direction)


class Options(OptionList):
    """An OptionList whose up/down stop at the ends instead of wrapping round (k on a day's first activity
    then x marked its last one done); its page up/down wait for the layout as every OptionList's do."""

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
    """Every OptionList (ours, a form's drop-down, the command palette's list) pages only once laid out (once
    per process; the app calls this as it starts)."""
    global _installed
    if _installed:
        return
    _installed = True
    textual_move_page = OptionList._move_page

    def move_page(self: OptionList, direction: Any) -> None:
        _move_page_when_laid_out(self, direction, textual_move_page)

    OptionList._move_page = move_page  # type: ignore[method-assign]  # a patch of Textual's class: no hook
