"""A real SMTP server for the outbox tests: aiosmtpd on 127.0.0.1, with the behaviours a sender must survive
(refusing for a while, refusing for good, refusing one address, dropping the connection before DATA, killing
the sending process at a named point, filing what it accepts in the Sent folder as some providers do)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from tests.integration.dovecot import free_port


@dataclass
class Behaviour:
    refuse_rcpt: list[str] = field(default_factory=list)  # replies for the next RCPTs ("451 ...", "550 ...")
    refuse_address: dict[str, str] = field(default_factory=dict)  # address -> its RCPT reply, every time
    drop_at_rcpt: int = 0  # drop the connection at this many RCPTs
    kill_at: str | None = None  # "rcpt" (before DATA) or "data" (after accepting, before the reply)
    kill_pid: int | None = None
    file_in: Any = None  # callable(raw bytes): e.g. append to the Dovecot Sent folder


class Handler:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        b = self.behaviour
        if b.drop_at_rcpt:
            b.drop_at_rcpt -= 1
            if not b.drop_at_rcpt:
                server.transport.close()
                return "421 closing"
        if b.kill_at == "rcpt" and b.kill_pid:
            b.kill_at = None
            os.kill(b.kill_pid, signal.SIGKILL)
        if b.refuse_rcpt:
            return b.refuse_rcpt.pop(0)
        if address in b.refuse_address:
            return b.refuse_address[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), raw))
        b = self.behaviour
        if b.file_in is not None:
            b.file_in(raw)
        if b.kill_at == "data" and b.kill_pid:
            b.kill_at = None
            os.kill(b.kill_pid, signal.SIGKILL)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[tuple[str, list[str], bytes]]:
        return self.handler.received

    @property
    def behaviour(self) -> Behaviour:
        return self.handler.behaviour
