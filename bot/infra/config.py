"""Settings, from the environment or a ``.env`` file (see ``.env.example``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
PROBLEMS = Path(__file__).with_name("settings_es.yaml")
"""What each setting must be, in Spanish, with an example (read by ``explain``)."""


def cron_trigger(expression: str, zone: ZoneInfo | None = None) -> CronTrigger:
    """A schedule from a crontab expression: the usual five fields (minute hour day month
    weekday), or six with the seconds first (``*/5 * * * * *``: every five seconds), for
    periods under a minute, as the tests of the scheduler's election need."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) == 6:
        second, minute, hour, day, month, weekday = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=weekday, timezone=zone)  # fmt: skip
    return CronTrigger.from_crontab(expression, timezone=zone)


class Settings(BaseSettings):
    """Consulta's configuration. Field names are the environment variables, upper-cased."""

    # env_ignore_empty: ``NAME=`` (as in .env.example) means the default, not an empty value.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    telegram_bot_token: str = ""
    telegram_base_url: str = DEFAULT_BASE_URL
    database_url: str = "sqlite:///consulta.db"
    consulta_file: Path | None = None
    consulta_organisers: Annotated[frozenset[int], NoDecode] = frozenset()
    consulta_timezone: str = "America/Santiago"
    consulta_bot_username: str = ""
    consulta_invite_days: int = Field(default=30, ge=1)
    consulta_reminder_days: float = Field(default=3, gt=0)
    consulta_reminder_max: int = Field(default=2, ge=0)
    consulta_quiet_hours: str = Field(
        default="21:00-09:00", pattern=r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"
    )
    consulta_digest_cron: str = "0 8 * * *"
    consulta_leader_retry: float = Field(
        default=10.0,
        gt=0,
        description="PostgreSQL: seconds between a standby replica's attempts to take over "
        "the scheduler (the leader checks its lock twice as often).",
    )
    consulta_rate_limit: float = Field(
        default=30.0, ge=0, description="Outgoing messages per second overall; 0 turns it off."
    )

    # --- consulta webhook (bot/adapter/webhook.py) ---
    consulta_webhook_listen: str = "127.0.0.1"
    consulta_webhook_port: int = Field(default=8080, ge=0, le=65535)
    consulta_webhook_path: str = Field(default="/telegram", pattern=r"^/[A-Za-z0-9_\-/.]*$")
    consulta_webhook_url: str = Field(
        default="",
        description="Public HTTPS URL Telegram posts updates to; if set, the process registers "
        "it with setWebhook at start (replicas behind the same proxy may leave it empty).",
    )
    telegram_webhook_secret: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_\-]{0,256}$",  # what Telegram accepts as secret_token
        description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; required by "
        "consulta webhook.",
    )
    consulta_log_format: Literal["text", "json"] = "text"

    @field_validator("consulta_organisers", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError as exc:
                raise ValueError("CONSULTA_ORGANISERS: comma-separated Telegram user ids") from exc
        return value

    @field_validator("consulta_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:  # not found / not a zone's name
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("consulta_digest_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        cron_trigger(value)  # raises ValueError with what is wrong
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.consulta_timezone)

    def digest_trigger(self) -> CronTrigger:
        """When digests are sent: ``CONSULTA_DIGEST_CRON`` in the consultation's zone."""
        return cron_trigger(self.consulta_digest_cron, self.zone)


def explain(error: ValidationError) -> list[str]:
    """One line per bad setting, in Spanish: the variable, what it must be and an example.
    The value given is never shown (it may be a token, a secret or a password)."""
    catalogue = yaml.safe_load(PROBLEMS.read_text(encoding="utf-8"))
    lines: list[str] = []
    for problem in error.errors():
        variable = str(problem["loc"][0]).upper() if problem["loc"] else "?"
        known = catalogue["variables"].get(variable)
        line = catalogue["line"].format(
            variable=variable,
            problem=known["problem"] if known else catalogue["unknown"],
            example=known["example"] if known else "…",
        )
        if line not in lines:
            lines.append(line)
    return lines
