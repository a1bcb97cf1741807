"""Settings as an organiser meets them: `cp .env.example .env` works, and every bad setting
is one Spanish line naming the variable, with an example, never a secret's value; exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def consulta(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "CONSULTA_", "DATABASE_"))}  # fmt: skip
    env.update(PYTHONPATH=str(ROOT), **extra)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_env_example_copied_as_is_works(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = consulta("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "consulta.db").exists()
    chat = consulta("chat", "--as", "ana", cwd=tmp_path)  # the bundled consultation
    assert chat.returncode == 0, chat.stderr


@pytest.mark.parametrize(
    ("variable", "value", "secret"),
    [
        ("CONSULTA_TIMEZONE", "America/Nowhere", False),
        ("CONSULTA_TIMEZONE", "../etc", False),
        ("CONSULTA_INVITE_DAYS", "treinta", False),
        ("CONSULTA_ORGANISERS", "ana,bea", False),
        ("CONSULTA_DIGEST_CRON", "every day", False),
        ("CONSULTA_QUIET_HOURS", "noche", False),
        ("CONSULTA_WEBHOOK_PORT", "99999", False),
        ("CONSULTA_LOG_FORMAT", "xml", False),
        ("TELEGRAM_WEBHOOK_SECRET", "s3cret with spaces!", True),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, secret: bool
) -> None:
    result = consulta("db", "upgrade", cwd=tmp_path, **{variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuración inválida: {variable} debe")
    assert f"Ejemplo: {variable}=" in lines[0]
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr
    if secret:
        assert value not in result.stderr
    assert not (tmp_path / "consulta.db").exists()


def test_two_bad_settings_are_two_lines(tmp_path: Path) -> None:
    result = consulta("db", "upgrade", cwd=tmp_path, CONSULTA_TIMEZONE="Marte/Olympus",
                      CONSULTA_REMINDER_MAX="-1")  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    named = sorted(line.split()[2] for line in lines)
    assert named == ["CONSULTA_REMINDER_MAX", "CONSULTA_TIMEZONE"]
