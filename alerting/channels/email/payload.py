"""Email alert: one ``EmailMessage`` with a plain-text part and an HTML alternative."""

from __future__ import annotations

from email.message import EmailMessage
from html import escape

from alerting.channels import digest_text
from alerting.delivery import Digest
from alerting.incident import Incident


def subject(incident: Incident) -> str:
    return f"[Pulseline {incident.state.upper()}] {incident.severity}: {incident.title}"[:200]


def message(incident: Incident, sender: str, recipients: list[str]) -> EmailMessage:
    facts = [
        ("Severity", incident.severity),
        ("Kind", incident.kind),
        ("Project", str(incident.project_id)),
        ("Occurrences", str(incident.occurrences)),
        ("Opened", incident.opened_at.isoformat()),
    ]
    plain = "\n".join(
        [incident.title, "", incident.explanation, ""]
        + [f"{name}: {value}" for name, value in facts]
        + [f"{label}: {url}" for label, url in incident.links.items()]
    )
    links = "".join(
        f'<li><a href="{escape(url)}">{escape(label)}</a></li>'
        for label, url in incident.links.items()
    )
    html = (
        f"<html><body><h2>{escape(incident.title)}</h2><p>{escape(incident.explanation)}</p>"
        f"{_table(facts)}<ul>{links}</ul></body></html>"
    )
    headers = {"X-Pulseline-Incident": incident.id}
    return _email(subject(incident), sender, recipients, plain, html, headers)


def digest_subject(digest: Digest) -> str:
    return f"[Pulseline DIGEST] {digest_text.headline(digest)}"[:200]


def digest_message(digest: Digest, sender: str, recipients: list[str]) -> EmailMessage:
    """Counts, then every member (email has room for all of them), oldest first."""
    facts = [
        ("By kind", digest_text.tally(digest.kinds())),
        ("By severity", digest_text.tally(digest.severities())),
        ("Project", str(digest.project_id)),
    ]
    plain = "\n".join(
        [digest_text.headline(digest), ""]
        + [f"{name}: {value}" for name, value in facts]
        + [""]
        + [f"- {digest_text.line(i)} at {i.updated_at.isoformat()}" for i in digest.incidents]
    )
    items = "".join(
        f"<li>{escape(digest_text.line(i))} at {escape(i.updated_at.isoformat())}</li>"
        for i in digest.incidents
    )
    html = (
        f"<html><body><h2>{escape(digest_text.headline(digest))}</h2>"
        f"{_table(facts)}<ul>{items}</ul></body></html>"
    )
    return _email(digest_subject(digest), sender, recipients, plain, html)


def _table(facts: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(n)}</th><td>{escape(v)}</td></tr>" for n, v in facts)
    return f"<table>{rows}</table>"


def _email(
    subject: str,
    sender: str,
    recipients: list[str],
    plain: str,
    html: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    return msg
