"""Textual's OptionList, with paging that waits for the list's layout."""

from __future__ import annotations

from textual.widgets import OptionList


class Options(OptionList):
    """An OptionList whose page up/down work right after its options were replaced.

    Textual 8.2 maps options to lines when the list is laid out; page up/down pressed before that (a board
    column reloaded a moment ago) raised KeyError. Here the lines are brought up to date first, and a list
    that has no layout yet stays where it is.
    """

    def _move_page(self, direction: int) -> None:
        self._update_lines()
        if self.highlighted is not None and self.highlighted not in self._index_to_line:
            return
        if self.highlighted is None and 0 not in self._index_to_line:
            return
        super()._move_page(direction)
