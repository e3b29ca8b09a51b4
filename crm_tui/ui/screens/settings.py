"""The Settings mode: users (and who is me), pipelines with stages and sub-states, custom field definitions."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Label, OptionList
from textual.widgets.option_list import Option

from crm_tui.core.clock import parse_date
from crm_tui.core.errors import CrmError, NotFound, ValidationError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import (
    configuration,
    custom_fields,
    email_templates,
    mail_accounts,
    mass_mail,
    pipelines,
    team,
    users,
)
from crm_tui.core.types import CustomFieldType, RecordRef, RecordType, StageKind
from crm_tui.core.wording import plural
from crm_tui.runtime.settings import set_config_value
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.mass_mail import prepare_mass_mail
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, RecordForm, saved_id
from crm_tui.ui.screens.template_form import TemplateForm
from crm_tui.ui.widgets.option_list import Options
from crm_tui.ui.widgets.status_bar import StatusBar

SECTIONS = [
    ("users", "Users"),
    ("pipelines", "Pipelines and stages"),
    ("fields", "Custom fields"),
    ("accounts", "Mail accounts"),
    ("templates", "Mail templates"),
]


class SettingsScreen(CrmScreen):
    AUTO_FOCUS = "#settings-table"
    BINDINGS = [
        Binding("n", "new", "New", id="settings.new"),
        Binding("e,enter", "edit", "Edit", id="settings.edit"),
        Binding("D", "delete", "Delete", id="settings.delete"),
        Binding("M", "make_me", "This is me", show=False, id="settings.me"),
        Binding("m", "mail_team", "Mass mail to the team", show=False, id="settings.mail_team"),
        Binding("p", "switch_pipeline", "Pipeline", show=False, id="settings.pipeline"),
        Binding("N", "new_pipeline", "New pipeline", show=False, id="settings.new_pipeline"),
        Binding("u", "add_substate", "Add sub-state", show=False, id="settings.add_substate"),
        Binding(
            "U", "edit_substate", "Rename or remove a sub-state", show=False, id="settings.edit_substate"
        ),
        Binding("K", "move_stage(-1)", "Stage up", show=False, id="settings.stage_up"),
        Binding("J", "move_stage(1)", "Stage down", show=False, id="settings.stage_down"),
        Binding("t", "test_account", "Test mail account", show=False, id="settings.test_account"),
        Binding("g", "groups", "Groups of users", show=False, id="settings.groups"),
        Binding("a", "add_member", "Add a user to the group", show=False, id="settings.add_member"),
        Binding(
            "x", "remove_member", "Take a user out of the group", show=False, id="settings.remove_member"
        ),
        Binding("j", "cursor(1)", "Down", show=False, id="settings.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="settings.up"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.section = "users"
        self.pipeline_id: int | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Options(*(Option(label, id=key) for key, label in SECTIONS), id="sections")
            with Vertical(id="settings-main"):
                yield Label("", id="settings-title")
                yield DataTable(id="settings-table", cursor_type="row", zebra_stripes=True)
                yield Label("", id="settings-help")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sections", OptionList).highlighted = 0
        self.show_section("users")
        self.query_one(DataTable).focus()

    @on(OptionList.OptionHighlighted, "#sections")
    def _section(self, event: OptionList.OptionHighlighted) -> None:
        if (
            event.option.id
            and event.option.id != self.section
            and (self.section, event.option.id) != ("groups", "users")
        ):
            self.show_section(event.option.id)

    def show_section(self, section: str) -> None:
        self.section = section
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        help_text = {
            "users": "n new user · e edit · M this is me · m mass mail to the team",
            "groups": "n new group · e rename · a add a user · x take a user out · D delete · g back to the users"
            " · automation mail can go to a group",
            "pipelines": "p switch pipeline · N new pipeline · n new stage · e edit stage · D delete stage · K/J move · "
            "u add sub-state · U rename or remove a sub-state",
            "fields": "n new field · e edit · D delete",
            "accounts": "n new account · e edit · D remove · t test the login · ctrl+r sync now",
            "templates": "n new template · e edit · D delete · fields: contact.name, organization.name, deal.title, "
            "quote.number, lead.title, user.first_name (a colleague), me.name, today…",
        }[section]
        self.query_one("#settings-help", Label).update(Text(help_text, style="dim"))
        with self.context.database().read() as session:
            if section == "users":
                self._users(session, table)
            elif section == "groups":
                self._groups(session, table)
            elif section == "pipelines":
                self._pipelines(session, table)
            elif section == "accounts":
                self._accounts(session, table)
            elif section == "templates":
                self._templates(session, table)
            else:
                self._fields(session, table)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        noun = {
            "users": "user",
            "groups": "group",
            "pipelines": "stage",
            "fields": "custom field",
            "accounts": "mail account",
            "templates": "mail template",
        }[section]
        self.crm_app.update_status(plural(table.row_count, noun))

    def _users(self, session: Any, table: DataTable[Any]) -> None:
        self.query_one("#settings-title", Label).update(Text("Users", style="bold"))
        table.add_columns("", "Name", "E-mail", "Belongs to", "Active")
        for user in configuration.user_views(session, me=self.context.settings.me):
            table.add_row(
                "me" if user.is_me else "",
                Text(user.name),
                Text(user.email),
                Text(user.belongs_to),
                "yes" if user.active else "no",
                key=str(user.id),
            )

    def _groups(self, session: Any, table: DataTable[Any]) -> None:
        self.query_one("#settings-title", Label).update(Text("Groups of users", style="bold"))
        table.add_columns("Group", "Members")
        for group in team.groups(session):
            members = ", ".join(u.name for u in group.members) or "no members yet (a adds one)"
            table.add_row(Text(group.name), Text(members), key=str(group.id))

    def _pipelines(self, session: Any, table: DataTable[Any]) -> None:
        all_pipelines = configuration.pipeline_views(session)
        if self.pipeline_id not in [p.id for p in all_pipelines]:
            self.pipeline_id = all_pipelines[0].id if all_pipelines else None
        names = "  ".join(f"[{p.name}]" if p.id == self.pipeline_id else p.name for p in all_pipelines)
        self.query_one("#settings-title", Label).update(
            Text(f"Pipelines: {names or 'none yet'}", style="bold")
        )
        table.add_columns("#", "Stage", "Kind", "Probability", "Sub-states", "Deals")
        if self.pipeline_id is None:
            return
        for stage in configuration.stage_views(session, self.pipeline_id):
            table.add_row(
                str(stage.position + 1),
                Text(stage.name),
                stage.kind,
                f"{stage.probability}%",
                Text(", ".join(stage.substates)),
                str(stage.deals),
                key=str(stage.id),
            )

    def _fields(self, session: Any, table: DataTable[Any]) -> None:
        self.query_one("#settings-title", Label).update(Text("Custom fields", style="bold"))
        table.add_columns("Record type", "Key", "Label", "Type", "Required", "Choices")
        for entity in custom_fields.ENTITY_TYPES:
            for definition in configuration.field_views(session, entity):
                table.add_row(
                    entity,
                    definition.key,
                    Text(definition.label),
                    definition.field_type,
                    "yes" if definition.required else "",
                    Text((definition.choices or "").replace("\n", ", ")),
                    key=str(definition.id),
                )

    def _accounts(self, session: Any, table: DataTable[Any]) -> None:
        self.query_one("#settings-title", Label).update(Text("Mail accounts (IMAP)", style="bold"))
        table.add_columns(
            "Name", "IMAP server", "Login", "Password", "Sync since", "Every", "My addresses", "Sent copies"
        )
        for a in configuration.account_views(session):
            table.add_row(
                Text(a.name),
                Text(f"{a.imap_host}:{a.imap_port} ({a.imap_security})"),
                Text(a.username),
                {"keyring": "OS keyring", "env": f"${a.password_ref}", "command": "command"}.get(
                    a.password_source, a.password_source
                ),
                a.sync_since.isoformat() if a.sync_since else "all",
                f"{a.refresh_minutes} min",
                Text(", ".join(x for x in a.addresses.splitlines() if x)),
                Text(
                    terminal_safe(a.sent_copy_folder or "", max_length=40)
                    if a.sent_copy == "folder"
                    else mail_accounts.SENT_COPIES.get(a.sent_copy, a.sent_copy)
                ),
                key=str(a.id),
            )

    def _account_name(self, account_id: int) -> str:
        with self.context.database().read() as session:
            account = configuration.account_view(session, account_id)
        return account.name if account else str(account_id)

    def _account_form(self, account_id: int | None) -> FormSpec:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail import secrets

        values: dict[str, str] = {
            "preset": "other",
            "imap_security": "ssl",
            "imap_port": "993",
            "password_source": "keyring",
            "refresh_minutes": "5",
            "sent_copy": "server",
        }
        old_name: str | None = None
        folders: list[str] = []  # the account's synced folders: where its sent copies may go instead
        if account_id is not None:
            with self.context.database().read() as session:
                a = configuration.account_view(session, account_id)
            if a is not None:
                old_name = a.name
                values = {
                    "name": a.name,
                    "preset": a.preset,
                    "imap_host": a.imap_host,
                    "imap_port": str(a.imap_port),
                    "imap_security": a.imap_security,
                    "ca_cert": a.ca_cert or "",
                    "username": a.username,
                    "password_source": a.password_source,
                    "password_ref": a.password_ref or "",
                    "smtp_host": a.smtp_host or "",
                    "smtp_port": str(a.smtp_port or ""),
                    "smtp_security": a.smtp_security or "",
                    "addresses": ", ".join(x for x in a.addresses.splitlines() if x),
                    "refresh_minutes": str(a.refresh_minutes),
                    "signature": a.signature or "",
                    "sync_since": a.sync_since.isoformat() if a.sync_since else "all",
                    "sent_copy": f"folder:{a.sent_copy_folder}"
                    if a.sent_copy == "folder" and a.sent_copy_folder
                    else a.sent_copy,
                }
                folders = [*a.folders]
                if a.sent_copy_folder and a.sent_copy_folder not in folders:
                    folders.append(a.sent_copy_folder)  # chosen before, not (or no longer) synced
        security = [("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", "none (loopback only)")]
        fields = [
            FieldSpec("name", "Name", required=True, placeholder="e.g. work"),
            FieldSpec(
                "preset",
                "Provider (fills the servers)",
                "choice",
                [
                    ("other", "other"),
                    *[(p, p) for p in mail_accounts.PRESETS],
                    # Offered only for the demo's own account, which stays one when edited.
                    *(
                        [(mail_accounts.DEMO_PRESET, "demo (never connects)")]
                        if values.get("preset") == mail_accounts.DEMO_PRESET
                        else []
                    ),
                ],
                required=True,
            ),
            FieldSpec("imap_host", "IMAP server (empty with a provider)"),
            FieldSpec("imap_port", "IMAP port", "number"),
            FieldSpec("imap_security", "IMAP security", "choice", security),
            FieldSpec("ca_cert", "CA certificate file (a self-signed server)"),
            FieldSpec("username", "Login", required=True),
            FieldSpec(
                "password_source",
                "Password from",
                "choice",
                [("keyring", "the OS keyring"), ("env", "an environment variable"), ("command", "a command")],
                required=True,
            ),
            FieldSpec(
                "password",
                "Password (kept in the OS keyring; empty keeps the stored one)",
                "password",
            ),
            FieldSpec(
                "password_ref", "Environment variable or command", placeholder="e.g. CRM_IMAP_PASSWORD"
            ),
            FieldSpec("smtp_host", "SMTP server"),
            FieldSpec("smtp_port", "SMTP port", "number"),
            FieldSpec("smtp_security", "SMTP security", "choice", security),
            FieldSpec("addresses", "My addresses on this account", "list"),
            FieldSpec("refresh_minutes", "Sync every (minutes)", "number", required=True),
            FieldSpec("signature", "Signature", "textarea"),
            FieldSpec("sync_since", "Keep mail since (YYYY-MM-DD or all; empty: 90 days back)"),
            FieldSpec(
                "sent_copy",
                "Sent copies go to",
                "choice",
                [
                    ("server", "the server's Sent folder (\\Sent)"),
                    *[(f"folder:{name}", terminal_safe(name, max_length=80)) for name in folders],
                    ("none", "don't save a copy"),
                ],
            ),
        ]

        def number(v: dict[str, str], name: str) -> int | None:
            text = v.get(name, "").strip()
            if not text:
                return None
            try:
                return int(text)
            except ValueError:
                raise ValidationError.single(name, "a whole number") from None

        def save(v: dict[str, str]) -> int:

            since_text = v.get("sync_since", "").strip().lower()
            since = None
            if since_text and since_text != "all":
                try:
                    since = parse_date(since_text)
                except ValueError:
                    raise ValidationError.single("sync_since", "YYYY-MM-DD or all") from None
            copy_to = v.get("sent_copy", "")
            preset = v.get("preset") or "other"
            preset_changed = account_id is None or preset != values.get("preset")
            source = v.get("password_source") or "keyring"
            data = mail_accounts.AccountInput(
                name=v.get("name", "").strip(),
                preset=preset if preset_changed else None,
                imap_host=v.get("imap_host", "").strip() or None,
                imap_port=number(v, "imap_port"),
                imap_security=v.get("imap_security") or None,
                ca_cert=v.get("ca_cert", "").strip() or None,
                username=v.get("username", "").strip(),
                password_source=source,
                password_ref=v.get("password_ref", "").strip() or None,
                smtp_host=v.get("smtp_host", "").strip() or None,
                smtp_port=number(v, "smtp_port"),
                smtp_security=v.get("smtp_security") or None,
                addresses=[a.strip() for a in v.get("addresses", "").split(",") if a.strip()],
                refresh_minutes=number(v, "refresh_minutes"),
                signature=v.get("signature", ""),
                sync_since=since,
                sync_all=since_text == "all",
                sent_copy="folder" if copy_to.startswith("folder:") else (copy_to or "server"),
                sent_copy_folder=copy_to.removeprefix("folder:") if copy_to.startswith("folder:") else None,
            )
            password = v.get("password", "")
            if source == "keyring":
                usable, _ = secrets.keyring_backend()
                if not usable:
                    raise ValidationError.single("password_source", secrets.NO_KEYRING)
                if not password and (account_id is None or values.get("password_source") != "keyring"):
                    raise ValidationError.single(
                        "password", "type the password once: it goes to the OS keyring"
                    )
            with self.context.database().write() as session:
                if account_id is None:
                    account = mail_accounts.create_account(
                        session, data, now=self.context.clock.now(), default_user_id=self.context.me_id()
                    )
                elif old_name is None:  # the account was gone when the form opened
                    raise NotFound(f"no account named {old_name!r}")
                else:
                    account = mail_accounts.update_account(
                        session, old_name, data, now=self.context.clock.now()
                    )
                if source == "keyring" and password:
                    secrets.store_in_keyring(account.name, password)
                elif source == "keyring" and old_name and old_name != account.name:
                    secrets.store_in_keyring(account.name, secrets.password_for(old_name, "keyring", None))
                    secrets.forget(old_name)
                return saved_id(account.id)

        return FormSpec("Edit mail account" if account_id else "New mail account", fields, values, save)

    def action_test_account(self) -> None:
        if self.section != "accounts" or (account_id := self.selected_id()) is None:
            return
        self.notify("Logging in…")
        self._test_login(self._account_name(account_id))

    @work(thread=True, exclusive=True, group="account-test", exit_on_error=False)
    def _test_login(self, name: str) -> None:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.imap import folder_names, load_login

        try:
            count = len(folder_names(load_login(self.context.database(), name)))
        except CrmError as exc:
            # The demo's account never connects: that is information, not a failure.
            severity = "information" if getattr(exc, "kind", None) == "demo" else "error"
            self.app.call_from_thread(self.notify, str(exc), severity=severity, timeout=10)
            return
        self.app.call_from_thread(self.notify, f"{name}: logged in, {plural(count, 'folder')}.")

    def selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return int(key) if key else None

    def action_cursor(self, step: int) -> None:
        """j/k move like the arrows in whichever list has the focus: the sections or the table."""
        focused = self.focused
        target: Any = focused if isinstance(focused, OptionList) else self.query_one(DataTable)
        target.action_cursor_down() if step > 0 else target.action_cursor_up()

    def _form(self, spec: FormSpec) -> None:
        def saved(record_id: int | None) -> None:
            if record_id is None:
                return
            if self.section == "users":
                self.crm_app.refresh_me()  # the first user becomes me
            elif self.section == "accounts":
                # The first account starts the background sync now, not at the app's next look (15 s).
                self.crm_app.look_for_accounts()
            self.show_section(self.section)

        if self.section == "templates":
            self.app.push_screen(TemplateForm(spec), saved)  # checks the template in a thread first
            return
        self.app.push_screen(RecordForm(spec), saved)

    def _write(self, work: Any, then: Any = None) -> None:
        """``work(session)`` in a worker; once it is written, the section shows it, then ``then()`` runs."""

        def written(_: Any) -> None:
            self.show_section(self.section)
            if then is not None:
                then()

        self.write_in_worker(lambda session: work(session) and None, written)

    # --- users ---

    def _user_form(self, user_id: int | None) -> FormSpec:
        with self.context.database().read() as session:
            partners = [(str(id_), name) for id_, name in configuration.partner_choices(session)]
            values: dict[str, str] = {"active": "true"}
            user = configuration.user_view(session, user_id) if user_id is not None else None
            if user is not None:
                values = {
                    "name": user.name,
                    "email": user.email,
                    "organization_id": str(user.organization_id or ""),
                    "active": "true" if user.active else "false",
                }
        fields = [
            FieldSpec("name", "Name", required=True),
            FieldSpec("email", "E-mail", required=True),
            FieldSpec("organization_id", "Partner organization (empty: our company)", "choice", partners),
            FieldSpec("active", "Active", "choice", [("true", "yes"), ("false", "no")], required=True),
        ]

        def save(v: dict[str, str]) -> int:
            data = users.UserInput(
                v.get("name", ""),
                v.get("email", ""),
                int(v["organization_id"]) if v.get("organization_id") else None,
                v.get("active") != "false",
            )
            with self.context.database().write() as session:
                if user_id is None:
                    return saved_id(users.create_user(session, data, now=self.context.clock.now()).id)
                return saved_id(users.update_user(session, user_id, data).id)

        return FormSpec("Edit user" if user_id else "New user", fields, values, save)

    def action_mail_team(self) -> None:
        """m (Users): one template to every active colleague but me (our company's users: a partner
        organization's users are not the team), one mail each, previewed first."""

        if self.section != "users":
            self.notify("m in Users writes a mass mail to the team.")
            return
        me_id = self.context.me_id()
        prepare_mass_mail(self, "user", "the team", lambda session: mass_mail.team(session, me_id=me_id))

    # --- groups ---

    def action_groups(self) -> None:
        """g: the groups of users, shown in Settings > Users (g again: the users)."""
        going = "users" if self.section == "groups" else "groups"
        self.section = going  # before the section list moves to Users, so that it keeps the groups
        self.query_one("#sections", OptionList).highlighted = 0
        self.show_section(going)
        self.query_one(DataTable).focus()

    def _group(self) -> tuple[int, str] | None:
        """The highlighted group (id, name), or None (saying what to do) outside the groups."""
        if self.section != "groups" or (group_id := self.selected_id()) is None:
            self.notify(
                "In Settings > Users: groups (g), on a group."
                if self.section != "groups"
                else "No group yet: n."
            )
            return None
        with self.context.database().read() as session:
            return group_id, team.group_view(session, group_id).name

    def _new_group(self) -> None:
        now = self.context.clock.now()
        self.app.push_screen(
            PromptDialog("Name of the new group (e.g. Service)"),
            lambda name: self._write(lambda s: team.create_group(s, name, now=now)) if name else None,
        )

    def _rename_group(self, group_id: int) -> None:
        with self.context.database().read() as session:
            name = team.group_view(session, group_id).name
        self.app.push_screen(
            PromptDialog(f"Rename group {name!r}", value=name),
            lambda new: self._write(lambda s: team.rename_group(s, group_id, new)) if new else None,
        )

    def action_add_member(self) -> None:
        if (group := self._group()) is None:
            return
        group_id, name = group
        with self.context.database().read() as session:
            members = {u.id for u in team.group_view(session, group_id).members}
            choices = [(str(u.id), f"{u.name} <{u.email}>") for u in configuration.user_views(session, me=None)
                       if u.id not in members and u.active]  # fmt: skip
        if not choices:
            self.notify(f"Every active user is in {name} already.")
            return
        self.app.push_screen(
            ChoiceDialog(f"Add to the group {name!r}", choices),
            lambda user: self._write(lambda s: team.add_member(s, group_id, int(user))) if user else None,
        )

    def action_remove_member(self) -> None:
        if (group := self._group()) is None:
            return
        group_id, name = group
        with self.context.database().read() as session:
            choices = [(str(u.id), u.name) for u in team.group_view(session, group_id).members]
        if not choices:
            self.notify(f"{name} has no members.")
            return
        self.app.push_screen(
            ChoiceDialog(f"Take out of the group {name!r}", choices),
            lambda user: self._write(lambda s: team.remove_member(s, group_id, int(user))) if user else None,
        )

    def action_make_me(self) -> None:
        if self.section != "users" or (user_id := self.selected_id()) is None:
            return

        with self.context.database().read() as session:
            user = configuration.user_view(session, user_id)
        if user is None:
            return
        try:
            set_config_value(self.context.paths.config_file, "me", user.email)
        except OSError as exc:
            self.notify(f"cannot write {self.context.paths.config_file}: {exc.strerror}", severity="warning")
            return
        self.context.settings = dataclasses.replace(self.context.settings, me=user.email)
        self.crm_app.refresh_me()
        self.notify(f"You are {user.name} now (saved in config.toml).")
        self.show_section("users")
        self.crm_app.update_status()

    # --- pipelines ---

    def _stage_form(self, stage_id: int | None) -> FormSpec:
        values = {"kind": "open", "probability": "50"}
        if stage_id is not None:
            with self.context.database().read() as session:
                stage = configuration.stage_view(session, stage_id)
            if stage is not None:
                values = {"name": stage.name, "kind": stage.kind, "probability": str(stage.probability)}
        fields = [
            FieldSpec("name", "Name", required=True),
            FieldSpec("kind", "Kind", "choice", [(k.value, k.value) for k in StageKind], required=True),
            FieldSpec("probability", "Win probability (%)", "number", required=True),
        ]

        def save(v: dict[str, str]) -> int:
            try:
                probability = int(v.get("probability", "").strip())
            except ValueError:
                raise ValidationError.single("probability", "must be a whole number from 0 to 100") from None
            with self.context.database().write() as session:
                if stage_id is None:
                    data = pipelines.StageInput(v.get("name", ""), v.get("kind") or "open", probability)
                    # A new stage is offered only while a pipeline is shown (action_new); the form is modal.
                    assert self.pipeline_id is not None
                    return saved_id(pipelines.add_stage(session, self.pipeline_id, data).id)
                return saved_id(
                    pipelines.update_stage(
                        session,
                        stage_id,
                        name=v.get("name", ""),
                        kind=v.get("kind") or "open",
                        probability=probability,
                    ).id
                )

        return FormSpec("Edit stage" if stage_id else "New stage", fields, values, save)

    def action_switch_pipeline(self) -> None:
        if self.section != "pipelines":
            return
        with self.context.database().read() as session:
            ids = [p.id for p in configuration.pipeline_views(session)]
        if ids:
            self.pipeline_id = (
                ids[(ids.index(self.pipeline_id) + 1) % len(ids)] if self.pipeline_id in ids else ids[0]
            )
            self.show_section("pipelines")

    def action_new_pipeline(self) -> None:
        def named(name: str | None) -> None:
            if not name:
                return
            stages = [
                pipelines.StageInput("New", "open", 10),
                pipelines.StageInput("Won", "won", 100),
                pipelines.StageInput("Lost", "lost", 0),
            ]

            def work(session: Any) -> None:
                self.pipeline_id = pipelines.create_pipeline(session, name, stages).id

            self.section = "pipelines"
            self._write(work)

        self.app.push_screen(
            PromptDialog("Name of the new pipeline (it starts with New, Won and Lost)"), named
        )

    def action_add_substate(self) -> None:
        if self.section != "pipelines" or (stage_id := self.selected_id()) is None:
            return
        self.app.push_screen(
            PromptDialog(f"New sub-state of {self.record_name(RecordRef(RecordType.STAGE, stage_id))}"),
            lambda name: self._write(lambda s: pipelines.add_substate(s, stage_id, name)) if name else None,
        )

    def action_edit_substate(self) -> None:
        if self.section != "pipelines" or (stage_id := self.selected_id()) is None:
            return
        with self.context.database().read() as session:
            choices = [(str(s.id), s.name) for s in configuration.substate_views(session, stage_id)]
        if not choices:
            self.notify("This stage has no sub-states; u adds one.")
            return

        def chosen(substate: str | None) -> None:
            if substate is None:
                return
            substate_id = int(substate)
            name = dict(choices)[substate]

            def act(choice: str | None) -> None:
                if choice == "rename":
                    self.app.push_screen(
                        PromptDialog(f"Rename sub-state {name!r}", value=name),
                        lambda new: (
                            self._write(lambda s: pipelines.rename_substate(s, substate_id, new))
                            if new
                            else None
                        ),
                    )
                elif choice == "remove":
                    self._write(lambda s: pipelines.delete_substate(s, substate_id))

            self.app.push_screen(
                ChoiceDialog(
                    f"Sub-state {name!r}", [("rename", "Rename"), ("remove", "Remove (deals lose it)")]
                ),
                act,
            )

        self.app.push_screen(ChoiceDialog("Which sub-state?", choices), chosen)

    def action_move_stage(self, step: int) -> None:
        if self.section != "pipelines" or (stage_id := self.selected_id()) is None:
            return
        table = self.query_one(DataTable)
        target = table.cursor_row + step
        if 0 <= target < table.row_count:
            self._write(
                lambda s: pipelines.move_stage_position(s, stage_id, target),
                lambda: table.move_cursor(row=target),
            )

    # --- fields ---

    def _field_form(self, definition_id: int | None) -> FormSpec:
        values = {"entity_type": "contact", "field_type": "text", "required": "false"}
        if definition_id is not None:
            with self.context.database().read() as session:
                d = configuration.field_view(session, definition_id)
            if d is not None:
                values = {
                    "entity_type": d.entity_type,
                    "key": d.key,
                    "label": d.label,
                    "field_type": d.field_type,
                    "choices": (d.choices or "").replace("\n", ", "),
                    "required": "true" if d.required else "false",
                }
        fields = [
            FieldSpec(
                "entity_type",
                "Record type",
                "choice",
                [(t, t) for t in custom_fields.ENTITY_TYPES],
                required=True,
                disabled=definition_id is not None,
            ),
            FieldSpec("key", "Key (a-z, 0-9, _)", required=True),
            FieldSpec("label", "Label", required=True),
            FieldSpec(
                "field_type", "Type", "choice", [(t.value, t.value) for t in CustomFieldType], required=True
            ),
            FieldSpec("choices", "Choices (for choice fields)", "list"),
            FieldSpec("required", "Required", "choice", [("false", "no"), ("true", "yes")], required=True),
        ]

        def save(v: dict[str, str]) -> int:
            data = custom_fields.FieldDefinitionInput(
                entity_type=v.get("entity_type", ""),
                key=v.get("key", "").strip(),
                label=v.get("label", ""),
                field_type=v.get("field_type") or "text",
                choices=[c.strip() for c in v.get("choices", "").split(",") if c.strip()],
                required=v.get("required") == "true",
            )
            with self.context.database().write() as session:
                if definition_id is None:
                    return saved_id(custom_fields.define_field(session, data).id)
                return saved_id(custom_fields.update_field(session, definition_id, data).id)

        return FormSpec("Edit custom field" if definition_id else "New custom field", fields, values, save)

    # --- mail templates ---

    def _templates(self, session: Any, table: DataTable[Any]) -> None:
        self.query_one("#settings-title", Label).update(Text("Mail templates (Jinja2)", style="bold"))
        table.add_columns("Name", "Subject", "Used for")
        for template in configuration.template_views(session):
            table.add_row(
                Text(template.name),
                Text(template.subject),
                Text(template.description or ""),
                key=str(template.id),
            )

    def _template_form(self, template_id: int | None) -> FormSpec:

        values: dict[str, str] = {}  # a new template starts empty: the example is a placeholder, not text
        if template_id is not None:
            with self.context.database().read() as session:
                template = configuration.template_view(session, template_id)
            if template is not None:
                values = {
                    "name": template.name,
                    "description": template.description or "",
                    "subject": template.subject,
                    "body": template.body,
                }
        fields = [
            FieldSpec("name", "Name", required=True),
            FieldSpec("description", "Used for"),
            FieldSpec("subject", "Subject", required=True, placeholder="e.g. Ihr Angebot {{ quote.number }}"),
            FieldSpec(
                "body",
                "Body",
                "textarea",
                required=True,
                placeholder="e.g. Guten Tag {{ contact.name }},\n…\nViele Grüße\n{{ me.name }}",
            ),
        ]

        def save(v: dict[str, str]) -> int:
            data = email_templates.TemplateInput(
                v.get("name", ""), v.get("subject", ""), v.get("body", ""), v.get("description")
            )
            now = self.context.clock.now()
            with self.context.database().write() as session:
                if template_id is None:
                    return saved_id(email_templates.create_template(session, data, now=now).id)
                return saved_id(email_templates.update_template(session, template_id, data, now=now).id)

        return FormSpec("Edit mail template" if template_id else "New mail template", fields, values, save)

    # --- the section-aware keys ---

    def action_new(self) -> None:
        if self.section == "users":
            self._form(self._user_form(None))
        elif self.section == "groups":
            self._new_group()
        elif self.section == "pipelines":
            if self.pipeline_id is None:
                self.action_new_pipeline()
            else:
                self._form(self._stage_form(None))
        elif self.section == "accounts":
            self._form(self._account_form(None))
        elif self.section == "templates":
            self._form(self._template_form(None))
        else:
            self._form(self._field_form(None))

    def action_edit(self) -> None:
        record_id = self.selected_id()
        if record_id is None:
            return
        if self.section == "groups":
            self._rename_group(record_id)
            return
        form = {
            "users": self._user_form,
            "pipelines": self._stage_form,
            "fields": self._field_form,
            "accounts": self._account_form,
            "templates": self._template_form,
        }[self.section]
        self._form(form(record_id))

    def action_delete(self) -> None:
        record_id = self.selected_id()
        if record_id is None or self.section == "users":
            if self.section == "users":
                self.notify("Users are kept for the history; edit one and set Active to no instead.")
            return
        if self.section == "accounts":
            name = self._account_name(record_id)

            def remove(yes: bool | None) -> None:
                if not yes:
                    return
                # the mail modules load when first used, not with the app (start-up)
                from crm_tui.mail import secrets

                self._write(lambda s: mail_accounts.remove_account(s, name), lambda: secrets.forget(name))

            self.app.push_screen(
                ConfirmDialog(f"Remove mail account {name}?", "Mail filed on records is kept.", "Remove"),
                remove,
            )
            return
        if self.section == "groups":
            with self.context.database().read() as session:
                name = team.group_view(session, record_id).name
            self.app.push_screen(
                ConfirmDialog(
                    f"Delete the group {name!r}?",
                    "Its users stay; a rule that mails the group fails, saying so.",
                    "Delete",
                ),
                lambda yes: self._write(lambda s: team.delete_group(s, record_id)) if yes else None,
            )
            return
        if self.section == "templates":
            self.app.push_screen(
                ConfirmDialog(
                    "Delete this mail template?", "Mail already written with it stays as it is.", "Delete"
                ),
                lambda yes: (
                    self._write(lambda s: email_templates.delete_template(s, record_id)) if yes else None
                ),
            )
            return
        if self.section == "fields":
            self.app.push_screen(
                ConfirmDialog(
                    "Delete this custom field?", "Its values on every record go with it.", "Delete"
                ),
                lambda yes: self._write(lambda s: custom_fields.delete_field(s, record_id)) if yes else None,
            )
            return
        with self.context.database().read() as session:
            stage = configuration.stage_view(session, record_id)
            if stage is None:
                return
            stages = configuration.stage_views(session, stage.pipeline_id)
        in_use = next((s.deals for s in stages if s.id == record_id), 0)
        others = [(str(s.id), s.name) for s in stages if s.id != record_id and s.kind != "lost"]

        def delete(target: str | None) -> None:
            move_to = int(target) if target else None
            self._write(
                lambda s: pipelines.delete_stage(
                    s,
                    record_id,
                    move_deals_to=move_to,
                    now=self.context.clock.now(),
                    user_id=self.context.me_id(),
                )
            )

        if in_use:
            self.app.push_screen(
                ChoiceDialog(f"{in_use} deals are in {stage.name}: move them to", others),
                lambda t: delete(t) if t else None,
            )
        else:
            self.app.push_screen(
                ConfirmDialog(f"Delete stage {stage.name}?", "No deal is in it.", "Delete"),
                lambda yes: delete(None) if yes else None,
            )
