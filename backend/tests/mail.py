"""Email and jobs in tests: the jobs a test's requests enqueued, a real SMTP server to
send to, and a bounded wait for what workers do."""

import asyncio
import re
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.jobs import SEND_EMAIL, EmailJob


@dataclass
class Outbox:
    """The email jobs enqueued in the test's transaction (what a worker would send)."""

    session: AsyncSession
    after_id: int = 0  # jobs committed by other tests are not this test's

    async def start(self) -> "Outbox":
        connection = await self.session.connection()
        result = await connection.execute(text("SELECT coalesce(max(id), 0) FROM pgqueuer"))
        self.after_id = result.scalar_one()
        return self

    async def sent(self) -> list[EmailJob]:
        connection = await self.session.connection()
        rows = await connection.execute(
            text("SELECT payload FROM pgqueuer WHERE entrypoint = :e AND id > :i ORDER BY id"),
            {"e": SEND_EMAIL, "i": self.after_id},
        )
        return [EmailJob.model_validate_json(payload) for (payload,) in rows]

    async def link_token(self, path: str, index: int = -1) -> str:
        message = (await self.sent())[index]
        return token_in(message.text, path)

    async def reset_token(self, index: int = -1) -> str:
        return await self.link_token("reset-password", index)


def token_in(text_body: str, path: str) -> str:
    match = re.search(rf"{path}\?token=([\w-]+)", text_body)
    assert match, text_body
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sink:
    """An SMTP server on 127.0.0.1 that keeps what it receives. With `hold` set, it holds
    each message without answering (a send stuck mid-way) until `release` is set, then
    refuses it (451); once `hold` is cleared it accepts the next."""

    port: int = field(default_factory=free_port)
    received: list[tuple[list[str], str]] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold.is_set():
            self.held.set()
            await asyncio.to_thread(self.release.wait, 60)
            return "451 Held, not accepted: try again"
        self.received.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.release.set()
            self.controller.stop()
            self.controller = None

    def messages_to(self, email: str) -> list[str]:
        return [content for recipients, content in self.received if email in recipients]

    def texts_to(self, email: str) -> list[str]:
        """The plain-text bodies of the messages to `email`, decoded."""
        texts = []
        for content in self.messages_to(email):
            message = message_from_string(content, policy=default_policy)
            assert isinstance(message, EmailMessage)
            body = message.get_body(preferencelist=("plain",))
            assert body is not None, content
            texts.append(body.get_content())
        return texts


WAIT_SECONDS = 30  # an upper bound for every wait below, not an expected duration


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(WAIT_SECONDS * 20):
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")
