"""The `consulta` command, run as users run it: a real process, a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from flows.definition import bundled_path


def consulta(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONSULTA_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}", **extra)
    return env


def test_run_without_token_says_how_to_get_one(tmp_path: Path) -> None:
    result = consulta("run", env=environment(tmp_path, TELEGRAM_BOT_TOKEN=""))
    assert result.returncode == 2
    assert "@BotFather" in result.stderr and ".env" in result.stderr
    assert not (tmp_path / "c.db").exists()  # nothing done before the check


def test_check_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    text = bundled_path().read_text(encoding="utf-8")
    broken = text.replace("id: q2\n", "id: Q2\n").replace("kind: feasibility", "kind: wish")
    bad = tmp_path / "bad.yaml"
    bad.write_text(broken, encoding="utf-8")
    result = consulta("check", str(bad), env=environment(tmp_path))
    assert result.returncode == 1
    line_q2 = broken.splitlines().index("  - id: Q2") + 1
    assert f"line {line_q2}: questions[2].id" in result.stderr
    assert "questions[5].kind" in result.stderr

    ok = consulta("check", str(bundled_path()), "--diagram", env=environment(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert "6 questions" in ok.stdout and "flowchart TD" in ok.stdout


def test_chat_rehearsal_then_export(tmp_path: Path) -> None:
    env = environment(tmp_path)
    # consent, skip the profile (3 skips), agreement "De acuerdo", then a reason
    script = "1\n5\n7\n3\n1\nPorque sí\n/revisar\n"
    result = consulta("chat", "--as", "ana", env=env, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "Pregunta A" in result.stdout and "Pregunta 1 · Territorios" in result.stdout

    out = tmp_path / "export.csv"
    exported = consulta("export", "--format", "csv", "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    frame = pd.read_csv(out)
    assert list(frame["choice"]) == ["De acuerdo"] and list(frame["text"]) == ["Porque sí"]
    assert frame["participant"][0] != "ana" and len(frame["participant"][0]) == 8
    assert frame["timestamp"][0].endswith(("-0300", "-0400"))  # America/Santiago

    xlsx = tmp_path / "export.xlsx"
    assert consulta("export", "--format", "xlsx", "--out", str(xlsx), env=env).returncode == 0
    assert len(pd.read_excel(xlsx)) == 1
