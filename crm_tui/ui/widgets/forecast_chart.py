"""The forecast as a chart: weighted amounts of open deals by expected close month (the board's `f` and the
funnel screen draw it)."""

from __future__ import annotations

from rich.text import Text

from crm_tui.core.money import format_money
from crm_tui.core.services import opportunities


def forecast_chart(months: list[opportunities.ForecastMonth], width: int = 50) -> Text:
    """Weighted amount by expected close month, one bar chart per currency (never summed across them)."""
    text = Text("Forecast: weighted amount of open deals by expected close month\n\n", style="bold")
    if not months:
        return text.append("No open deal has an expected close date.", style="dim")
    if any(m.overdue for m in months):
        text.append("overdue", style="bold red reverse")
        text.append(": the month is past and its deals are still open\n\n", style="dim")
    mark = 8 if any(m.overdue for m in months) else 0  # room for "overdue " after the month
    for currency in sorted({m.currency for m in months}):
        rows = [m for m in months if m.currency == currency]
        top = max(r.weighted_cents for r in rows) or 1
        text.append(f"{currency}\n", style="bold underline")
        for row in rows:
            cells = row.weighted_cents * width / top
            bar = "█" * int(cells) + ("▌" if cells - int(cells) >= 0.5 else "")
            text.append(f"  {row.month}  ", style="cyan")
            if row.overdue:
                text.append("overdue", style="bold red reverse")
                text.append(" ")
            else:
                text.append(" " * mark)
            text.append(bar.ljust(width + 1), style="green")
            text.append(f" {format_money(row.weighted_cents, currency):>18}", style="bold")
            deals = "deal" if row.count == 1 else "deals"
            text.append(
                f"  of {format_money(row.total_cents, currency)} · {row.count} {deals}\n", style="dim"
            )
        text.append("\n")
    return text
