"""w on a deal (its screen or its board card): who follows it. The picker lists the active users, the followers
marked; choosing one adds them to the deal's followers or takes them off. With the owner, the followers are
the deal's team, whom automation mail to "the team" reaches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import configuration, team
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.dialogs import ChoiceDialog


def choose_follower(screen: CrmScreen, deal_id: int, then: Callable[[], None] | None = None) -> None:
    """The picker of followers of the deal; a choice toggles that user, says who follows it now, then ``then()``."""
    context = screen.context
    with context.database().read() as session:
        following = {f.id for f in team.followers(session, deal_id)}
        people = [u for u in configuration.user_views(session, me=None) if u.active or u.id in following]
    if not people:
        screen.notify("No users yet: add them in Settings > Users.")
        return
    choices = [
        (str(u.id), f"{'✓' if u.id in following else ' '} {terminal_safe(u.name, max_length=60)}")
        for u in people
    ]
    now = context.clock.now()

    def toggle(session: Any, user_id: int) -> str:
        if user_id in following:
            team.unfollow(session, deal_id, user_id)
        else:
            team.follow(session, deal_id, user_id, now=now)
        names = [f.name for f in team.followers(session, deal_id)]
        return ", ".join(names) or "nobody"

    def chosen(value: str | None) -> None:
        if value is None:
            return
        user_id = int(value)
        name = next(u.name for u in people if u.id == user_id)
        verb = "no longer follows" if user_id in following else "follows"

        def done(names: str) -> None:
            screen.notify(f"{name} {verb} the deal. Followers: {names}.")
            if then is not None:
                then()

        screen.write_in_worker(lambda session: toggle(session, user_id), done)

    screen.app.push_screen(
        ChoiceDialog("Followers of the deal (✓): Enter adds or takes off", choices), chosen
    )
