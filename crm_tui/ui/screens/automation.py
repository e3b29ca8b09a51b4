"""Automation (R on the board, or the palette): the rules per pipeline and stage, what is pending, and the log.

Rules: n new · e/Enter edit · space enable/disable · D delete · x fire what is due now. Tab (or r, p, l) switches
between rules, pending actions and the log. Every change says how many pending actions it touches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Label, Select, Static

from crm_tui.core.automation import actions, engine, fields, reports, rule_views, rules
from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import team
from crm_tui.core.wording import plural
from crm_tui.runtime.context import AppContext
from crm_tui.ui.messages import AutomationLoaded
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.dialogs import ConfirmDialog
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, RecordForm, field_id
from crm_tui.ui.widgets.status_bar import StatusBar

VIEWS = ("rules", "pending", "log")
OUTCOME_STYLE = {
    "done": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "dim",
    "stopped": "magenta",
}
# Which form fields each action uses (the others are hidden while it is chosen).
ACTION_FIELDS = {
    "send_email": {"template", "to", "user_id", "extra", "account"},
    "plan_activity": {"activity_type", "task_type", "subject", "description", "due", "due_at_time", "owner",
                      "complete_on_exit"},
    "repeat_lead": {"subject", "owner"},
    "copy_deal": {"target_stage", "subject", "owner"},
    "set_substate": {"target_substate", "open"},
    "assign": {"assign_field", "method"},
    "report": {"report_template", "report_to", "user_id", "template", "account"},
}  # fmt: skip
PARAM_FIELDS = set().union(*ACTION_FIELDS.values())
TRIGGER_FIELDS = {"date": {"date_field"}, "field_change": {"watch_field"}, "event": {"record_event"}}


def parse_delay(text: str) -> tuple[int, str]:
    """ "6 months", "-3 days", "2 h", "0" -> (value, unit)."""
    words = text.strip().lower().split()
    if not words or words == ["0"]:
        return 0, "days"
    try:
        value = int(words[0])
    except ValueError:
        raise ValidationError.single(
            "delay", "write a number and a unit: 4 days, 6 months, 2 hours, -3 days"
        ) from None
    unit = words[1] if len(words) > 1 else "days"
    for full in ("minutes", "hours", "days", "months"):
        if full.startswith(unit.rstrip("s")) or unit in (full[0], full[:3]):
            return value, full
    raise ValidationError.single("delay", f"unknown unit {unit!r}: minutes, hours, days or months")


def delay_text(value: int, unit: str) -> str:
    return "0" if value == 0 else f"{value} {unit}"


def _recipient(role: object, params: dict[str, Any]) -> str:
    """The editor's value of a stored recipient: a group as "group:ID", the others by their role."""
    if role == "group":
        return f"group:{params.get('group_id') or ''}"
    return str(role or "")


def _group_params(params: dict[str, Any], key: str) -> None:
    """The editor's "group:ID" stored as the role ``group`` with its ``group_id``."""
    kind, _, group_id = str(params.get(key) or "").partition(":")
    if kind == "group":
        params[key], params["group_id"] = "group", group_id


def rule_form(context: AppContext, rule_id: int | None, on_change: Callable[[str], None]) -> FormSpec:
    """The form of one rule; saving calls ``on_change(message)`` with what the save did to pending actions."""
    # the automation runtime (with this installation's mail builder) loads when first used (start-up)
    from crm_tui.runtime.automation import report_dirs

    with context.database().read() as session:
        offered = rule_views.choices(session)
        data, place = rule_views.stored_rule(session, rule_id) if rule_id else (None, "")
        groups = team.groups(session)
    # Whom mail goes to: the roles, then each group as "group:ID" (stored as to=group with its group_id).
    recipients = [(r, actions.ROLE_WORDS[r]) for r in actions.ROLES if r != "group"]
    recipients += [(f"group:{g.id}", f"group: {g.name}") for g in groups]
    places, templates, people, accounts = offered.places, offered.templates, offered.people, offered.accounts
    stage_choices, substate_choices = offered.stages, offered.substates
    all_fields = sorted({f for entity in fields.FIELDS.values() for f in entity})
    date_fields = sorted({f for entity in fields.DATE_FIELDS.values() for f in entity})
    values: dict[str, str] = {
        "enabled": "yes", "trigger": "enter", "delay": "0", "action": "plan_activity", "activity_type": "task",
        "owner": "owner", "complete_on_exit": "no", "open": "open", "assign_field": "owner",
        "method": "round_robin", "late_policy": "fire", "late_limit_hours": "72", "survives_exit": "no",
        "to": "primary_contact", "due": "0",
    }  # fmt: skip
    if data is not None:
        p = data.params
        values.update(
            name=data.name, enabled="yes" if data.enabled else "no", place=place, trigger=data.trigger,
            delay=delay_text(data.delay_value, data.delay_unit), at_time=data.at_time or "",
            date_field=data.date_field or "", watch_field=data.watch_field or "", conditions=data.conditions,
            record_event=data.record_event or "",
            action=data.action, late_policy=data.late_policy, late_limit_hours=str(data.late_limit_hours),
            survives_exit="yes" if data.survives_exit else "no",
            template=str(p.get("template") if data.action == "send_email" else p.get("email_template") or ""),
            to=_recipient(p.get("to"), p) or "primary_contact", report_to=_recipient(p.get("email_to"), p),
            user_id=str(p.get("user_id") or ""), extra=str(p.get("extra") or ""), account=str(p.get("account") or ""),
            activity_type=str(p.get("type") or "task"), task_type=str(p.get("task_type") or ""),
            subject=str(p.get("subject") or p.get("title") or ""), description=str(p.get("description") or ""),
            due=delay_text(int(p.get("due_value") or 0), str(p.get("due_unit") or "days")),
            due_at_time=str(p.get("at_time") or ""), owner=str(p.get("owner") or "owner"),
            complete_on_exit="yes" if p.get("complete_on_exit") else "no",
            target_stage=str(p.get("stage_id") or ""), target_substate=str(p.get("substate_id") or ""),
            open="open" if p.get("open", True) else "close", assign_field=str(p.get("field") or "owner"),
            method=str(p.get("method") or "round_robin"), report_template=str(p.get("template") or "") if data.action == "report" else "",
        )  # fmt: skip
    zone = getattr(context.zone, "key", "UTC")
    responsible = [("owner", "the record's owner"), *people]
    specs = [
        FieldSpec("name", "Rule name", required=True),
        FieldSpec("enabled", "Enabled", "choice", [("yes", "yes"), ("no", "no (keeps the rule, fires nothing)")], required=True),
        FieldSpec("place", "Where (a stage, sub-state, status, or every record)", "choice", places, required=True),
        FieldSpec("trigger", "When", "choice", [
            ("enter", "on enter (sub-state: on open)"), ("exit", "on exit (sub-state: on close)"),
            ("date", "from a date field"), ("create", "when created (every record)"),
            ("field_change", "when a field changes"), ("activity_done", "when an activity is done"),
            ("event", "on a record event of the deal (a quote accepted, a document signed...)"),
        ], required=True),  # fmt: skip
        FieldSpec("delay", "Delay after the moment (0, 4 days, 6 months, 2 hours; -3 days = before a date)"),
        FieldSpec("at_time", "At time of day (HH:MM, for days and months)", placeholder="09:00"),
        FieldSpec("date_field", "Date field", "choice", [(f, f) for f in date_fields]),
        FieldSpec("watch_field", "Field to watch", "choice", [(f, f) for f in all_fields if f not in ("stage", "pipeline", "created")]),
        FieldSpec("record_event", "Event (on every deal, or a pipeline's)", "choice", offered.events),
        FieldSpec("conditions", "Conditions (one per line: amount >= 10000, region = Bayern, title ~ Wallbox)", "textarea"),
        FieldSpec("action", "Action", "choice", list(actions.ACTIONS.items()), required=True),
        FieldSpec("template", "Mail template", "choice", templates),
        FieldSpec("to", "Send to", "choice", recipients),
        FieldSpec("user_id", "The chosen user", "choice", people),
        FieldSpec("extra", "Also to (an address)", placeholder="office@example.com"),
        FieldSpec("account", "From the account (empty: the owner's)", "choice", accounts),
        FieldSpec("report_template", "Report template", "choice",
                  [(n, n) for n in reports.template_names(report_dirs(context))]),  # fmt: skip
        FieldSpec("report_to", "Mail the report to (empty: only store it on the record)", "choice",
                  recipients),  # fmt: skip
        FieldSpec("activity_type", "Activity type", "choice", [("call", "call"), ("meeting", "meeting"), ("task", "task")]),
        FieldSpec("task_type", "Task type", placeholder="Outbound call"),
        FieldSpec("subject", "Subject / title (merge fields: {{ deal.title }}, {{ contact.name }} ...)"),
        FieldSpec("description", "Description", "textarea"),
        FieldSpec("due", "Activity due after firing (0, 1 day, 2 hours)"),
        FieldSpec("due_at_time", "Activity at time of day (HH:MM)", placeholder="10:00"),
        FieldSpec("owner", "Responsible", "choice", responsible),
        FieldSpec("complete_on_exit", "Complete it when the record leaves", "choice", [("no", "no"), ("yes", "yes")]),
        FieldSpec("target_stage", "Copy into pipeline / stage", "choice", stage_choices),
        FieldSpec("target_substate", "Sub-state", "choice", substate_choices),
        FieldSpec("open", "Open or close it", "choice", [("open", "open"), ("close", "close")]),
        FieldSpec("assign_field", "Assign", "choice", [("owner", "the owner"), ("installer", "the installer partner"), ("reseller", "the reseller partner")]),
        FieldSpec("method", "By", "choice", [("round_robin", "round-robin"), ("fewest_open", "fewest open deals"),
                                            ("region", "region match"), ("postcode", "postcode match")]),  # fmt: skip
        FieldSpec("late_policy", "When the laptop was off", "choice", [("fire", "fire late"), ("skip", "skip when too late")]),
        FieldSpec("late_limit_hours", "Too late after (hours)"),
        FieldSpec("survives_exit", "Still fires after the record left", "choice", [("no", "no (cancelled on exit)"), ("yes", "yes")]),
    ]  # fmt: skip

    def to_input(v: dict[str, str]) -> rules.RuleInput:
        place = v.get("place", "")
        kind, _, rest = place.partition(":")
        data_ = rules.RuleInput(name=v["name"], action=v["action"], zone=zone)
        if kind == "stage":
            data_.scope, data_.stage_id = "stage", int(rest)
        elif kind == "substate":
            data_.scope, data_.substate_id = "substate", int(rest)
        elif kind == "status":
            entity, _, status = rest.partition(":")
            data_.scope, data_.entity, data_.status = "status", entity, status
        elif kind == "record":
            entity, _, pipeline = rest.partition(":")
            data_.scope, data_.entity = "record", entity
            data_.pipeline_id = int(pipeline) if pipeline else None
        else:
            raise ValidationError.single("place", "choose where the rule applies")
        if kind in ("stage", "substate"):
            data_.entity = "opportunity"
        data_.trigger = v["trigger"]
        data_.delay_value, data_.delay_unit = parse_delay(v.get("delay", "0"))
        data_.at_time = v.get("at_time") or None
        data_.date_field = v.get("date_field") or None
        data_.watch_field = v.get("watch_field") or None
        data_.record_event = v.get("record_event") or None
        data_.conditions = v.get("conditions", "")
        data_.enabled = v.get("enabled") != "no"
        data_.late_policy = v.get("late_policy") or "fire"
        try:
            data_.late_limit_hours = int(v.get("late_limit_hours") or 72)
        except ValueError:
            raise ValidationError.single("late_limit_hours", "a whole number of hours") from None
        data_.survives_exit = v.get("survives_exit") == "yes"
        action = v["action"]
        params: dict[str, Any] = {}
        if action == "send_email":
            params = {"template": v.get("template"), "to": v.get("to"), "user_id": v.get("user_id"),
                      "extra": v.get("extra"), "account": v.get("account")}  # fmt: skip
            _group_params(params, "to")
        elif action == "plan_activity":
            try:
                due_value, due_unit = parse_delay(v.get("due", "0"))
            except ValidationError:
                raise ValidationError.single("due", "write a number and a unit: 1 day, 2 hours") from None
            params = {"type": v.get("activity_type"), "task_type": v.get("task_type"), "subject": v.get("subject"),
                      "description": v.get("description"), "due_value": due_value, "due_unit": due_unit,
                      "at_time": v.get("due_at_time"), "owner": v.get("owner") or "owner",
                      "complete_on_exit": v.get("complete_on_exit") == "yes"}  # fmt: skip
        elif action == "repeat_lead":
            params = {"title": v.get("subject"), "owner": v.get("owner") or "owner"}
        elif action == "copy_deal":
            params = {
                "stage_id": v.get("target_stage"),
                "title": v.get("subject") or None,
                "owner": v.get("owner") or "owner",
            }
        elif action == "set_substate":
            params = {"substate_id": v.get("target_substate"), "open": v.get("open") != "close"}
        elif action == "assign":
            params = {"field": v.get("assign_field"), "method": v.get("method")}
        elif action == "report":
            params = {"template": v.get("report_template"), "email_to": v.get("report_to") or "",
                      "email_template": v.get("template"), "user_id": v.get("user_id"), "account": v.get("account")}  # fmt: skip
            _group_params(params, "email_to")
        data_.params = params
        return data_

    renames = {
        "params.template": "template", "params.to": "to", "params.user_id": "user_id", "params.extra": "extra",
        "params.account": "account", "params.type": "activity_type", "params.task_type": "task_type",
        "params.subject": "subject", "params.title": "subject", "params.description": "description",
        "params.due_value": "due", "params.due_unit": "due", "params.at_time": "due_at_time", "params.owner": "owner",
        "params.stage_id": "target_stage", "params.substate_id": "target_substate", "params.field": "assign_field",
        "params.method": "method", "params.email_to": "report_to", "params.group_id": "to", "params.email_template": "template",
        "stage_id": "place", "substate_id": "place", "status": "place", "scope": "place", "entity": "place",
        "pipeline_id": "place", "delay_value": "delay", "delay_unit": "delay",
    }  # fmt: skip
    if values.get("action") == "report":
        renames["params.template"] = "report_template"

    def save(v: dict[str, str]) -> int:
        data_ = to_input(v)
        try:
            with context.database().write() as session:
                saved_id, said = rule_views.saved_rule(session, rule_id, data_, now=context.clock.now())
            on_change(said)
            return saved_id
        except ValidationError as exc:
            names = dict(renames)
            if data_.action == "report":
                names["params.template"] = "report_template"
                names["params.group_id"] = "report_to"
            raise ValidationError({names.get(k, k): msg for k, msg in exc.errors.items()}) from None

    def side(v: dict[str, str]) -> Text:
        text = Text("This rule\n\n", style="bold")
        try:
            data_ = to_input({**v, "name": v.get("name") or "(unnamed)"})
            label = dict(places).get(v.get("place", ""), "?")
            with context.database().read() as session:
                fires, does = rule_views.described(session, data_)
            text.append(f"{label}\n", style="cyan")
            text.append(f"{fires}\n")
            text.append(f"→ {does}\n", style="green")
            for line in fields.parse_conditions(data_.conditions):
                text.append(f"  if {line.text()}\n", style="yellow")
        except (CrmError, ValueError, KeyError) as exc:
            text.append(str(exc), style="red")
        text.append("\nMerge fields: contact, organization, deal, lead, ticket, me, today", style="dim")
        return text

    return FormSpec(
        title="Edit automation rule" if rule_id else "New automation rule",
        fields=specs, values=values, save=save, side=side,
    )  # fmt: skip


class RuleForm(RecordForm):
    """The rule form shows only the fields the chosen action and trigger use."""

    def on_mount(self) -> None:
        super().on_mount()
        self._show_relevant()

    @on(Select.Changed)
    def _select_changed(self) -> None:
        self._show_relevant()

    def _show_relevant(self) -> None:
        values = self.values()
        wanted = ACTION_FIELDS.get(values.get("action", ""), set()) | TRIGGER_FIELDS.get(
            values.get("trigger", ""), set()
        )
        recipient = values.get("report_to") if values.get("action") == "report" else values.get("to")
        if recipient != "user":
            wanted = wanted - {"user_id"}
        if values.get("action") == "report" and not values.get("report_to"):
            wanted = wanted - {"template", "account"}
        optional = PARAM_FIELDS | {"date_field", "watch_field", "record_event"}
        for spec in self.spec.fields:
            if spec.name not in optional:
                continue
            widget = self.query_one("#" + field_id(spec.name))
            show = spec.name in wanted
            siblings = list(widget.parent.children) if widget.parent else []
            index = siblings.index(widget)
            for part in (siblings[index - 1], widget, siblings[index + 1]):
                part.display = show


class AutomationScreen(CrmScreen):
    BINDINGS = [
        Binding("q,escape", "back", "Back", id="automation.back"),
        Binding("j", "cursor(1)", "Down", show=False, id="automation.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="automation.up"),
        Binding("tab", "next_view", "Rules / pending / log", id="automation.next_view"),
        Binding("r", "view('rules')", "Rules", show=False, id="automation.rules"),
        Binding("p", "view('pending')", "Pending", show=False, id="automation.pending"),
        Binding("l", "view('log')", "Log", show=False, id="automation.log"),
        Binding("n", "new", "New rule", id="automation.new"),
        Binding("e,enter", "edit", "Edit rule", id="automation.edit"),
        # Not "toggle": DOMNode.action_toggle(attribute_name) is Textual's own action.
        Binding("space", "toggle_rule", "Enable/disable", id="automation.toggle"),
        Binding("D", "delete", "Delete rule", id="automation.delete"),
        Binding("x", "fire", "Fire due now", id="automation.fire"),
    ]

    def __init__(self, view: str = "rules") -> None:
        super().__init__()
        self.view = view
        self.rows: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Label("", id="automation-title")
        yield DataTable(id="automation-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="automation-detail")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.reload()

    def refresh_data(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.reload()

    def _title(self) -> Text:
        text = Text("Automation  ", style="bold")
        for view in VIEWS:
            text.append(f" {view} ", style="reverse bold" if view == self.view else "dim")
            text.append(" ")
        text.append("  tab switches · n new · e edit · space on/off · D delete · x fire due now", style="dim")
        return text

    @work(thread=True, exclusive=True, group="automation-view", exit_on_error=False)
    def reload(self) -> None:

        view = self.view
        with self.context.database().read() as session:
            if view == "rules":
                rows: list[Any] = rule_views.rule_rows(session)
            elif view == "pending":
                rows = engine.pending(session, limit=1000)
            else:
                rows = engine.log_rows(session, limit=1000)
        self.post_message(AutomationLoaded(view, rows))

    @on(AutomationLoaded)
    def _show(self, message: AutomationLoaded) -> None:
        if message.view != self.view:
            return
        zone = self.context.zone
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        self.rows = message.rows
        self.query_one("#automation-title", Label).update(self._title())

        def local(value: Any) -> str:
            return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""

        if self.view == "rules":
            table.add_columns("On", "Where", "Rule", "When", "Does", "Pending")
            for row in self.rows:
                table.add_row(
                    Text("●" if row.enabled else "○", style="green" if row.enabled else "dim"),
                    # At most 156 columns in all: Pending stays in sight in a 160-column terminal.
                    terminal_safe(row.where, max_length=30), terminal_safe(row.name, max_length=27), row.when[:37],
                    terminal_safe(row.does, max_length=40), str(row.pending), key=str(row.id),
                )  # fmt: skip
            status = f"{plural(len(self.rows), 'rule')}, {plural(sum(r.pending for r in self.rows), 'action')} pending"
        elif self.view == "pending":
            table.add_columns("Due", "Rule", "Record", "Does", "Because")
            for row in self.rows:
                table.add_row(local(row.due_at), terminal_safe(row.rule, max_length=30),
                              terminal_safe(row.record, max_length=40), terminal_safe(row.action, max_length=50),
                              terminal_safe(row.event, max_length=40))  # fmt: skip
            status = f"{plural(len(self.rows), 'action')} pending"
        else:
            table.add_columns("At", "Outcome", "Rule", "Record", "Result")
            for row in self.rows:
                table.add_row(local(row.at), Text(row.outcome, style=OUTCOME_STYLE.get(row.outcome, "")),
                              terminal_safe(row.rule, max_length=30), terminal_safe(row.record, max_length=24),
                              terminal_safe(row.message, max_length=90))  # fmt: skip
            status = plural(len(self.rows), "log entry")
        if self.rows:
            table.move_cursor(row=min(keep, len(self.rows) - 1))
        self.crm_app.update_status(f"automation: {status}")
        self._detail()

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        row = self.current()
        text = Text()
        if row is not None and self.view == "log":
            text.append(f"{row.outcome}: ", style=OUTCOME_STYLE.get(row.outcome, ""))
            text.append(terminal_safe(row.message, single_line=False))
        elif row is not None and self.view == "rules":
            text.append(terminal_safe(f"{row.name}: {row.where}, {row.when} → {row.does}"))
        self.query_one("#automation-detail", Static).update(text)

    def current(self) -> Any:
        table = self.query_one(DataTable)
        return self.rows[table.cursor_row] if self.rows and 0 <= table.cursor_row < len(self.rows) else None

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.action_cursor_down() if step > 0 else table.action_cursor_up()

    def action_view(self, view: str) -> None:
        self.view = view
        self.rows = []
        self.reload()

    def action_next_view(self) -> None:
        self.action_view(VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)])

    def _rule(self) -> Any:
        row = self.current()
        if self.view != "rules":
            self.notify("Rules are edited in the rules view (r).")
            return None
        # The ORM loads with the first rule shown, not with the app.
        from crm_tui.core.automation.rule_views import RuleRow

        return row if isinstance(row, RuleRow) else None

    def _open(self, rule_id: int | None) -> None:
        said: list[str] = []
        context = self.context
        try:
            spec = rule_form(context, rule_id, said.append)
        except CrmError as exc:
            self.notify(str(exc), severity="warning")
            return

        def saved(new_id: int | None) -> None:
            if new_id is not None:
                self.notify(terminal_safe(said[-1] if said else "Saved."))
                self.reload()

        self.app.push_screen(RuleForm(spec), saved)

    def action_new(self) -> None:
        if self.view != "rules":
            self.action_view("rules")
        self._open(None)

    def action_edit(self) -> None:
        row = self._rule()
        if row is not None:
            self._open(row.id)

    def action_toggle_rule(self) -> None:

        row = self._rule()
        if row is None:
            return
        now = self.context.clock.now()

        def changed(message: str) -> None:
            self.notify(terminal_safe(message))
            self.reload()

        self.write_in_worker(
            lambda session: rules.set_enabled(session, row.id, not row.enabled, now=now).message, changed
        )

    def action_delete(self) -> None:

        row = self._rule()
        if row is None:
            return
        body = f"{row.where}, {row.when} → {row.does}\n\n"
        body += f"{plural(row.pending, 'pending action')} will be dropped with it. The log stays."

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return

            def deleted(dropped: int) -> None:
                self.notify(f"Rule deleted; {plural(dropped, 'pending action')} dropped.")
                self.reload()

            self.write_in_worker(lambda session: rules.delete_rule(session, row.id), deleted)

        self.app.push_screen(
            ConfirmDialog(f"Delete the rule {terminal_safe(row.name)!r}?", body, "Delete"), confirmed
        )

    def action_fire(self) -> None:
        self.crm_app.fire_automations(then=self.reload)

    def action_back(self) -> None:
        self.app.pop_screen()
