"""Transactional email: Jinja2 templates (HTML and text), sent with aiosmtplib.

Routes enqueue a job (`app.jobs.enqueue_email`), so no request waits on SMTP and an outage
only delays the message; the job calls `send_email`. Without `SMTP_HOST` the message is
logged instead of sent.
"""

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.core.config import settings

logger = logging.getLogger(__name__)

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "email-templates"),
    autoescape=select_autoescape(["html"]),
    enable_async=False,
)


@dataclass(frozen=True, slots=True)
class EmailData:
    subject: str
    html: str
    text: str


def render(template: str, subject: str, context: dict[str, Any]) -> EmailData:
    context = {"project_name": settings.PROJECT_NAME, **context}
    return EmailData(
        subject=subject,
        html=templates.get_template(f"{template}.html").render(context),
        text=templates.get_template(f"{template}.txt").render(context),
    )


def reset_password_email(*, email_to: str, token: str) -> EmailData:
    link = f"{settings.FRONTEND_HOST}/reset-password?token={token}"
    return render(
        "reset_password",
        f"{settings.PROJECT_NAME} - Password recovery for {email_to}",
        {
            "email": email_to,
            "link": link,
            "valid_minutes": settings.PASSWORD_RESET_TOKEN_EXPIRE_MINUTES,
        },
    )


def invitation_email(*, email_to: str, token: str, tenant_name: str, role: str) -> EmailData:
    link = f"{settings.FRONTEND_HOST}/accept-invitation?token={token}"
    tenant_name = " ".join(tenant_name.split())  # a header holds no line breaks
    return render(
        "invitation",
        f"{settings.PROJECT_NAME} - You are invited to join {tenant_name}",
        {
            "email": email_to,
            "link": link,
            "tenant_name": tenant_name,
            "role": role,
            "valid_days": settings.INVITATION_EXPIRE_DAYS,
        },
    )


def test_email(*, email_to: str) -> EmailData:
    return render("test_email", f"{settings.PROJECT_NAME} - Test email", {"email": email_to})


async def send_email(*, email_to: str, data: EmailData, message_id: str | None = None) -> None:
    """Send one message; a failure raises (`aiosmtplib.SMTPException`, `OSError`), so the
    job that called it is retried."""
    if not settings.emails_enabled:
        if settings.ENVIRONMENT == "local":  # the whole message, links included, for local work
            logger.info(
                "SMTP_HOST is not set; email to %s not sent:\nSubject: %s\n\n%s",
                email_to,
                data.subject,
                data.text,
            )
        else:  # never a reset token in the logs of a real deployment
            logger.info("SMTP_HOST is not set; email to %s not sent: %s", email_to, data.subject)
        return
    message = EmailMessage()
    message["Subject"] = data.subject
    message["From"] = formataddr((settings.EMAILS_FROM_NAME or "", settings.EMAILS_FROM_EMAIL))
    message["To"] = email_to
    if message_id:
        message["Message-ID"] = message_id
    # Plain ASCII stays readable as sent (links intact), where quoted-printable would fold it.
    message.set_content(data.text, cte="7bit" if data.text.isascii() else "quoted-printable")
    message.add_alternative(data.html, subtype="html")
    await aiosmtplib.send(
        message,
        hostname=settings.SMTP_HOST,
        port=settings.SMTP_PORT,
        username=settings.SMTP_USER,
        password=settings.SMTP_PASSWORD,
        use_tls=settings.SMTP_SSL,
        start_tls=settings.SMTP_TLS and not settings.SMTP_SSL,
        timeout=settings.SMTP_TIMEOUT,
    )
