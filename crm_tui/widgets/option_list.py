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
    """An OptionList whose page up/down work right after its options were replaced."""

    def _move_page(self, direction: int) -> None:
        _move_page_when_laid_out(self, direction, OptionList._move_page)


# A form's Select builds its own drop-down (SelectOverlay, an OptionList): it gets the same paging.
_textual_move_page = SelectOverlay._move_page
SelectOverlay._move_page = lambda self, direction: _move_page_when_laid_out(  # type: ignore[method-assign]
    self, direction, _textual_move_page
)
