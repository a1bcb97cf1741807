"""The `consulta` command, run as users run it: a real process, a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bot.services.reporting import MIN_FINISHED_FOR_RESULTS
from flows import load
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
    assert "6 preguntas" in ok.stdout and "flowchart TD" in ok.stdout


def test_chat_rehearsal_then_export(tmp_path: Path) -> None:
    env = environment(tmp_path)
    # consent, skip the province, skip the age, gender "Otro", agreement "De acuerdo", a reason,
    # then the commands /ayuda lists beside the conversation
    script = "1\n5\n7\n3\n1\nPorque sí\n/revisar\n/resultados\n/no_avisar\n"
    result = consulta("chat", "--as", "ana", env=env, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "Pregunta A (1 de 6)" in result.stdout
    assert "Pregunta 1 (2 de 6) · Territorios" in result.stdout
    assert "No conozco el comando" not in result.stdout
    m = load().messages
    assert m.results_not_yet.format(needed=MIN_FINISHED_FOR_RESULTS, finished=0) in result.stdout
    assert m.reminders_stopped in result.stdout

    # a rehearsal is left out of the consultation's figures unless asked for
    out = tmp_path / "export.csv"
    exported = consulta("export", "--format", "csv", "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    assert "Se escribieron 0 respuestas" in exported.stdout  # a rehearsal is left out...
    exported = consulta("export", "--format", "csv", "--out", str(out), "--include-rehearsals",
                        env=env)  # fmt: skip
    assert exported.returncode == 0, exported.stderr  # ...unless asked for
    assert "Se escribieron 1 respuestas" in exported.stdout
    frame = pd.read_csv(out, sep=";", encoding="utf-8-sig")
    assert list(frame["Opción elegida"]) == ["De acuerdo"]
    assert list(frame["Texto escrito"]) == ["Porque sí"]
    assert frame["Participante"][0] != "ana" and len(frame["Participante"][0]) == 8
    assert "Fecha y hora (America/Santiago)" in frame.columns

    xlsx = tmp_path / "export.xlsx"
    by_extension = ("export", "--out", str(xlsx), "--include-rehearsals")
    assert consulta(*by_extension, env=env).returncode == 0
    assert len(pd.read_excel(xlsx, sheet_name="Respuestas")) == 1

    wrong = consulta("export", "--format", "csv", "--out", str(tmp_path / "x.xlsx"), env=env)
    assert wrong.returncode == 2 and "--format csv" in wrong.stderr
    assert not (tmp_path / "x.xlsx").exists()


def test_report_on_an_empty_or_unmigrated_database_says_so(tmp_path: Path) -> None:
    env = environment(tmp_path)
    missing = consulta("report", "--out", str(tmp_path / "r"), env=env)
    assert missing.returncode == 1 and "consulta db upgrade" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "r").exists()

    assert consulta("db", "upgrade", env=env).returncode == 0
    empty = consulta("report", "--out", str(tmp_path / "r"), env=env)
    assert empty.returncode == 1 and "no tiene participantes" in empty.stderr
    assert not (tmp_path / "r").exists()


def test_help_is_in_spanish_with_the_same_names(tmp_path: Path) -> None:
    shown = consulta("export", "--help", env=environment(tmp_path))
    assert shown.returncode == 0
    assert "--out" in shown.stdout and "--format" in shown.stdout
    assert "Exporta todas las respuestas" in shown.stdout


def test_demo_says_where_it_writes_and_git_ignores_it(tmp_path: Path) -> None:
    env = environment(tmp_path)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'real.db'}"
    out = tmp_path / "demo"
    result = consulta("demo", "--participants", "5", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert f"Base de datos de la simulación: {out / 'demo.db'}" in result.stdout
    assert "nunca DATABASE_URL" in result.stdout
    assert (out / "demo.db").exists() and not (tmp_path / "real.db").exists()
    root = Path(__file__).parents[2]
    ignored = subprocess.run(["git", "check-ignore", "-q", "demo/digest.md"], cwd=root)
    assert ignored.returncode == 0  # the default --out folder is not committed by mistake
