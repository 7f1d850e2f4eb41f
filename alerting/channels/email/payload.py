"""Email alert: one ``EmailMessage`` with a plain-text part and an HTML alternative."""

from __future__ import annotations

from email.message import EmailMessage
from html import escape

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
    rows = "".join(f"<tr><th>{escape(n)}</th><td>{escape(v)}</td></tr>" for n, v in facts)
    links = "".join(
        f'<li><a href="{escape(url)}">{escape(label)}</a></li>'
        for label, url in incident.links.items()
    )
    html = (
        f"<html><body><h2>{escape(incident.title)}</h2><p>{escape(incident.explanation)}</p>"
        f"<table>{rows}</table><ul>{links}</ul></body></html>"
    )
    msg = EmailMessage()
    msg["Subject"] = subject(incident)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["X-Pulseline-Incident"] = incident.id
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    return msg
