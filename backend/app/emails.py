"""Transactional email: Jinja2 templates (HTML and text), sent with aiosmtplib.

Routes hand `send_email` to a background task, so no request waits on SMTP. Without
`SMTP_HOST` the message is logged instead of sent.
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


def test_email(*, email_to: str) -> EmailData:
    return render("test_email", f"{settings.PROJECT_NAME} - Test email", {"email": email_to})


async def send_email(*, email_to: str, data: EmailData) -> None:
    """Send one message; failures are logged, never raised (this runs after the response)."""
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
    message.set_content(data.text)
    message.add_alternative(data.html, subtype="html")
    try:
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
    except (aiosmtplib.SMTPException, OSError):
        logger.exception("Sending email to %s failed", email_to)
