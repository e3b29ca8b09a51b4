"""A real Dovecot IMAP server for the tests: its own config in a temporary folder, on 127.0.0.1, a free port.

Facts (../shared/FACTS.md, the mail engine issue): Dovecot refuses mail uid 0, so as root the mail user is
nobody; plaintext login on loopback needs ``disable_plaintext_auth = no``; users come from a passwd-file.
Outside CI a missing Dovecot skips these tests with a loud reason; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

USERS = 400  # enough for every test of a session; each test takes a fresh one
DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


def require_dovecot() -> str:
    if DOVECOT is None:
        reason = "Dovecot is not installed (Debian: apt-get install dovecot-imapd); the IMAP tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    return DOVECOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_plugins = $mail_plugins
protocol imap {{
  mail_max_userip_connections = 50
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{sent}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""

SENT = """  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }"""
# A server whose Sent folder is not called Sent (nor by a name a client could guess), and not made by itself:
# "Versendete Elemente" carries the \Sent special-use flag (RFC 6154) once a user makes it; until then the user
# has no Sent folder at all.
SENT_ELSEWHERE_NAME = "Versendete Elemente"
SENT_ELSEWHERE = """  mailbox "Versendete Elemente" {
    special_use = \\Sent
  }"""


@dataclass
class Dovecot:
    root: Path
    port: int
    users: dict[str, str]
    process: subprocess.Popen[str] | None = None  # None until start() has started it

    host = "127.0.0.1"

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password
        (self.root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))

    def client(self, user: str) -> Any:
        """An imapclient.IMAPClient logged in as ``user`` (imapclient ships no type information)."""
        import imapclient

        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start(sent: str = SENT) -> Dovecot:
    """Start a Dovecot in a new folder of its own (world-traversable: the mail user must reach it).
    ``sent``: how its Sent folder is configured (``SENT``: "Sent", made for every user)."""
    import tempfile

    binary = require_dovecot()
    root = Path(tempfile.mkdtemp(prefix="crm-tui-dovecot-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("nobody")
        uid, gid = account.pw_uid, account.pw_gid
        user, group = "nobody", _group_name(gid)
    else:
        uid, gid = os.getuid(), os.getgid()
        user, group = pwd.getpwuid(uid).pw_name, _group_name(gid)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(exist_ok=True)
    if os.geteuid() == 0:
        for path in (root, root / "mail", root / "state"):
            os.chown(path, uid, gid)
        root.chmod(0o755)
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(root=root, uid=uid, gid=gid, user=user, group=group, port=port, sent=sent)
    )
    server = Dovecot(root=root, port=port, users={})
    # Users are made up front: Dovecot re-reads a changed passwd-file only when its mtime moves (1 s steps).
    for n in range(1, USERS + 1):
        server.users[f"user{n}"] = f"pw-user{n}"
    server.add_user("anna", "secret-1")
    process = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    server.process = process
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dovecot exited: {process.stderr.read() if process.stderr else ''} {server.log()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                if probe.recv(100).startswith(b"* OK"):
                    return server
        except OSError:
            time.sleep(0.05)  # not listening yet: looked at again until the deadline
    server.stop()
    raise RuntimeError(f"dovecot did not listen on {port}: {server.log()}")


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name
