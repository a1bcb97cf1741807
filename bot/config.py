"""Settings, from the environment or a ``.env`` file (see ``.env.example``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_BASE_URL = "https://api.telegram.org/bot"


class Settings(BaseSettings):
    """Consulta's configuration. Field names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

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
    consulta_rate_limit: float = Field(
        default=30.0, ge=0, description="Outgoing messages per second overall; 0 turns it off."
    )

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
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @field_validator("consulta_digest_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value)  # raises ValueError with what is wrong
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.consulta_timezone)
