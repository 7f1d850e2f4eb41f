"""Alert senders against real local receivers: an HTTP server and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from standardwebhooks.webhooks import Webhook

from alerting.channels import HttpMessage
from alerting.channels.email import payload as email_payload
from alerting.delivery import Outcome
from alerting.send import HttpSender, SmtpSettings, send_email
from tests.unit.test_alert_incident import incident

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"integration-test-secret").decode()
TINY_SCHEDULE = (0.01, 0.01, 0.01)


@dataclass
class Receiver:
    """What the local webhook receiver saw, per path."""

    base: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)


def _handler(seen: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"] or 0))
            seen.hits[self.path] = seen.hits.get(self.path, 0) + 1
            seen.ids.append(self.headers["webhook-id"])
            seen.hosts.append(self.headers["host"])
            try:
                Webhook(SECRET).verify(body, dict(self.headers.items()))
                seen.verified.append(True)
            except Exception:
                seen.verified.append(False)
            status, location = 200, None
            if self.path == "/flaky" and seen.hits[self.path] == 1:
                status = 500
            elif self.path == "/gone":
                status = 410
            elif self.path == "/redirect":
                status, location = 302, "/target"
            elif self.path == "/slow":
                time.sleep(1.0)
            self.send_response(status)
            if location:
                self.send_header("location", location)
            self.send_header("content-length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    seen = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    seen.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def message(url: str) -> HttpMessage:
    body = json.dumps({"type": "incident.opened", "data": incident().to_json()}).encode()
    return HttpMessage(
        url=url,
        body=body,
        msg_id="msg_integration",
        headers={"content-type": "application/json"},
        secrets=(SECRET,),
    )


async def _deliver(path: str, base: str, *, allow_private: bool = True) -> list[Any]:
    sender = HttpSender(timeout_s=0.3, allow_private=allow_private)
    try:
        return await sender.deliver(
            "c1", message(base + path), rng=random.Random(0), schedule=TINY_SCHEDULE
        )
    finally:
        await sender.aclose()


def test_a_500_is_retried_and_then_delivered_with_the_same_signed_id(receiver: Receiver) -> None:
    attempts = asyncio.run(_deliver("/flaky", receiver.base))
    assert [(a.outcome, a.status) for a in attempts] == [(Outcome.RETRY, 500), (Outcome.OK, 200)]
    assert receiver.ids == ["msg_integration", "msg_integration"]
    assert receiver.verified == [True, True]
    assert receiver.hosts == [receiver.base.removeprefix("http://")] * 2


def test_a_410_asks_to_disable_the_channel_without_retrying(receiver: Receiver) -> None:
    attempts = asyncio.run(_deliver("/gone", receiver.base))
    assert [(a.outcome, a.status) for a in attempts] == [(Outcome.DISABLE, 410)]
    assert receiver.verified == [True]


def test_a_redirect_fails_and_its_target_is_never_hit(receiver: Receiver) -> None:
    attempts = asyncio.run(_deliver("/redirect", receiver.base))
    assert [(a.outcome, a.status) for a in attempts] == [(Outcome.FAILED, 302)]
    assert receiver.hits == {"/redirect": 1}


def test_a_slow_receiver_times_out_and_is_retried_until_the_schedule_ends(
    receiver: Receiver,
) -> None:
    attempts = asyncio.run(_deliver("/slow", receiver.base))
    assert [(a.outcome, a.detail) for a in attempts] == [(Outcome.RETRY, "timeout")] * 4


def test_without_the_opt_in_a_loopback_receiver_is_never_contacted(receiver: Receiver) -> None:
    attempts = asyncio.run(_deliver("/flaky", receiver.base, allow_private=False))
    assert [a.outcome for a in attempts] == [Outcome.FAILED]
    assert "loopback" in attempts[0].detail
    assert receiver.hits == {}


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK"


def _authenticate(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bot", b"pw")
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox, port = _Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _email() -> EmailMessage:
    return email_payload.message(incident(), "alerts@pulse.test", ["ops@pulse.test"])


def test_an_email_arrives_with_plain_and_html_parts(smtp_server: tuple[_Inbox, int]) -> None:
    inbox, port = smtp_server
    settings = SmtpSettings("127.0.0.1", port, username="bot", password="pw", starttls=False)
    attempt = asyncio.run(send_email(_email(), settings))
    assert attempt.outcome is Outcome.OK
    ((mail_from, rcpts, raw),) = inbox.messages
    assert (mail_from, rcpts) == ("alerts@pulse.test", ["ops@pulse.test"])
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["Subject"] == "[Pulseline OPEN] critical: Backup job is late"
    types = [part.get_content_type() for part in received.iter_parts()]
    assert types == ["text/plain", "text/html"]


def test_a_wrong_smtp_password_is_a_permanent_failure(smtp_server: tuple[_Inbox, int]) -> None:
    inbox, port = smtp_server
    settings = SmtpSettings("127.0.0.1", port, username="bot", password="nope", starttls=False)
    attempt = asyncio.run(send_email(_email(), settings))
    assert (attempt.outcome, attempt.status) == (Outcome.FAILED, 535)
    assert inbox.messages == []
