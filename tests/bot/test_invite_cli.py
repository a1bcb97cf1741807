"""`consulta invite`, run as organisers run it: a real process on a real database (SQLite
and PostgreSQL); links built from CONSULTA_BOT_USERNAME, or from getMe through the Bot API
stand-in."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import storage
from flows import load, step
from flows.events import Choice, InviteCheck, Invited
from storage import invitations
from storage.models import Invitation, Participant
from tests.helpers.botapi import BotApiStandIn

GOOD = """\
name,role/institution,comuna,email
Ana Rojas,Alcaldesa,Ovalle,ana@example.cl
Beto Díaz,Director DIDECO,río hurtado,
Carla Soto,Concejala,La Serena,+56 9 1234 5678
Dora Pinto,Encargada de turismo,Canela,
"""
BAD = """\
name,role/institution,comuna,email
Ana Rojas,Alcaldesa,Ovalle,ana@example.cl
,Concejal,Coquimbo,
Luis Pérez,Director DIDECO,Atlántida,
ana rojas,Secretaria,ovalle,
Marta Díaz,,Canela,
"""
LINK = r"https://t\.me/{bot}\?start=([A-Za-z0-9_-]{{22,64}})"


Run = tuple[tuple[str, ...], dict[str, str]]


def consulta(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    (result,) = together([(args, env)], cwd=cwd)
    return result


def together(runs: list[Run], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Independent ``consulta`` commands, run at the same time (as two organisers might)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        for args, env in runs
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONSULTA_"))}
    env.update(DATABASE_URL=database_url, **extra)
    return env


def stored(sessions: sessionmaker[Session]) -> list[Invitation]:
    with sessions() as s:
        return list(s.scalars(select(Invitation).order_by(Invitation.id)))


def count_invitations(url: str) -> int:
    engine = storage.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Invitation)) or 0
    finally:
        engine.dispose()


def joins(sessions: sessionmaker[Session], who: str, token: str, *, finished: bool) -> None:
    """The contact opens their link and consents (as the bot does), perhaps finishing."""
    defn, now = load(), datetime.now(UTC)
    with sessions.begin() as s:
        inv = invitations.find(s, token)
        assert inv is not None and invitations.check(inv, who, now) == "ok"
        invited = Invited(inv.id, token, inv.name, inv.institution, inv.comuna)
        loaded = storage.load(s, "telegram", who)
        result = step(defn, loaded.state, Choice(f"c:y:{token}"), InviteCheck("ok", invited))
        pid = storage.save(s, "telegram", who, loaded, result, now=now)
        if finished:
            participant = s.get(Participant, pid)
            assert participant is not None
            participant.finished_at = now


def test_importing_a_list_again_invites_only_the_new_contacts(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    """A list imported twice, or again with rows added, must not give anyone two links."""
    env = environment(database_url, CONSULTA_BOT_USERNAME="@consulta_bot")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(GOOD, encoding="utf-8")
    assert consulta("invite", "import", str(contacts), env=env, cwd=tmp_path).returncode == 0
    first = [r.id for r in stored(sessions)]

    contacts.write_text(GOOD + "Eva Araya,Alcaldesa,Illapel,\n", encoding="utf-8")
    again = consulta("invite", "import", str(contacts), env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("ya está invitado/a") == 4
    assert (
        f"(id {first[1]}); se omite. Un enlace nuevo: consulta invite reissue {first[1]}"
        in again.stdout
    )
    assert "Se invitó a 1 contacto(s)" in again.stdout
    assert [r.name for r in stored(sessions)][4:] == ["Eva Araya"]

    unchanged = consulta("invite", "import", str(contacts), env=env, cwd=tmp_path)
    assert "todos los contactos del archivo ya están invitados." in unchanged.stdout
    assert len(stored(sessions)) == 5

    revoked = consulta("invite", "revoke", str(first[0]), env=env, cwd=tmp_path)  # Ana's
    assert revoked.returncode == 0, revoked.stderr
    after = consulta("invite", "import", str(contacts), env=env, cwd=tmp_path)
    assert "Se invitó a 1 contacto(s)" in after.stdout  # a revoked invitation does not count
    assert [r.name for r in stored(sessions)][5:] == ["Ana Rojas"]


def test_import_list_revoke_reissue(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    env = environment(
        database_url, CONSULTA_BOT_USERNAME="@consulta_bot", CONSULTA_INVITE_DAYS="10"
    )
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(GOOD, encoding="utf-8")
    out, qr = tmp_path / "links.csv", tmp_path / "qr"
    result = consulta("invite", "import", str(contacts), "--out", str(out), "--qr", str(qr),
                      env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Se invitó a 4 contacto(s)" in result.stdout

    rows = stored(sessions)
    assert [(r.name, r.institution, r.comuna, r.contact) for r in rows] == [
        ("Ana Rojas", "Alcaldesa", "ovalle", "ana@example.cl"),
        ("Beto Díaz", "Director DIDECO", "rio_hurtado", None),
        ("Carla Soto", "Concejala", "la_serena", "+56 9 1234 5678"),
        ("Dora Pinto", "Encargada de turismo", "canela", None),
    ]
    assert all(r.expires_at - r.created_at == timedelta(days=10) for r in rows)
    tokens = {}
    for r in rows:  # each printed link opens its own invitation
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"{r.id}\t{r.name}\t"))
        match = re.search(LINK.format(bot="consulta_bot"), line)
        assert match is not None, line
        tokens[r.name] = match.group(1)
        with sessions() as s:
            found = invitations.find(s, match.group(1))
            assert found is not None and found.id == r.id
    assert len(set(tokens.values())) == 4

    with out.open(encoding="utf-8-sig", newline="") as f:
        written = list(csv.DictReader(f, delimiter=";"))
    assert [(w["nombre"], w["comuna"], w["contacto"]) for w in written] == [
        ("Ana Rojas", "Ovalle", "ana@example.cl"), ("Beto Díaz", "Río Hurtado", ""),
        ("Carla Soto", "La Serena", "+56 9 1234 5678"), ("Dora Pinto", "Canela", ""),
    ]  # fmt: skip
    assert [w["enlace"].rsplit("=", 1)[1] for w in written] == list(tokens.values())

    pngs = sorted(qr.glob("*.png"))
    assert [p.name for p in pngs] == [
        f"{rows[0].id:04d}-ana-rojas.png", f"{rows[1].id:04d}-beto-diaz.png",
        f"{rows[2].id:04d}-carla-soto.png", f"{rows[3].id:04d}-dora-pinto.png",
    ]  # fmt: skip
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.width >= 21 * 10  # a QR code of at least version 1
            assert image.height > image.width  # name, comuna and expiry under the code

    joins(sessions, "501", tokens["Ana Rojas"], finished=False)
    joins(sessions, "502", tokens["Beto Díaz"], finished=True)
    carla, dora = rows[2].id, rows[3].id
    revoked, reissued = together(
        [(("invite", "revoke", str(carla)), env), (("invite", "reissue", str(dora)), env)],
        cwd=tmp_path,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert "Se anuló la invitación" in revoked.stdout
    with sessions() as s:
        now = datetime.now(UTC)
        assert invitations.check(invitations.find(s, tokens["Carla Soto"]), "9", now) == "revoked"

    assert reissued.returncode == 0, reissued.stderr
    match = re.search(LINK.format(bot="consulta_bot"), reissued.stdout)
    assert match is not None and match.group(1) != tokens["Dora Pinto"]
    with sessions() as s:
        assert invitations.find(s, tokens["Dora Pinto"]) is None  # the old link is dead
        new = invitations.find(s, match.group(1))
        assert new is not None and new.id == dora
        assert invitations.check(new, "9", now) == "ok"

    listed = consulta("invite", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    status = {line.split("\t")[3].split(" (")[0]: line.split("\t")[2]
              for line in listed.stdout.splitlines() if "\t" in line}  # fmt: skip
    assert status == {
        "Ana Rojas": "entró", "Beto Díaz": "terminó", "Carla Soto": "anulada",
        "Dora Pinto": "invitado/a",
    }  # fmt: skip
    assert "<ana@example.cl>" in listed.stdout and "4 invitación(es)." in listed.stdout


def test_a_bad_file_imports_nothing_and_names_every_line(tmp_path: Path) -> None:
    """Validation comes before any storage (the import above runs on both databases)."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    storage.upgrade(url)  # two commands migrating one new database at once would race
    env = environment(url, CONSULTA_BOT_USERNAME="consulta_bot")
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text(BAD, encoding="utf-8")
    good.write_text(GOOD, encoding="utf-8")
    result, dry = together(
        [
            (("invite", "import", str(bad)), env),
            (("invite", "import", str(good), "--dry-run"), env),
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    problems = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if ": línea " in line]
    assert problems == [
        "línea 3: falta el nombre",
        "línea 4: comuna desconocida 'Atlántida'",
        "línea 5: repite la línea 2 (ana rojas, ovalle)",
        "línea 6: falta el cargo o la institución",
    ]
    assert "No se importó nada: 4 problema(s)." in result.stderr
    assert "https://" not in result.stdout

    assert dry.returncode == 0, dry.stderr
    assert "se invitaría a: Beto Díaz (Director DIDECO), Río Hurtado" in dry.stdout
    assert "4 contacto(s) nuevo(s) válido(s); no se importó nada (--dry-run)." in dry.stdout
    assert "https://" not in dry.stdout
    assert count_invitations(url) == 0


def test_the_bot_username_comes_from_get_me(tmp_path: Path) -> None:
    url, other = f"sqlite:///{tmp_path / 'c.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    spanish = tmp_path / "contactos.csv"  # as exported by a spreadsheet: BOM, ";", Spanish
    spanish.write_text(
        "\ufeffNombre;Cargo;Comuna;Teléfono\nAna Rojas;Alcaldesa;Vicuña;+56 9 8765 4321\n",
        encoding="utf-8",
    )
    engine = storage.make_engine(url)
    try:
        with BotApiStandIn() as api:
            env = environment(url, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_BASE_URL=api.base_url)
            args = ("invite", "import", str(spanish))
            result, no_way = together([(args, env), (args, environment(other))], cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            assert len(api.calls_of("getMe")) >= 1
        # Neither a username nor a token: told what to set, and nothing is imported.
        assert no_way.returncode == 2
        assert "CONSULTA_BOT_USERNAME" in no_way.stderr
        assert count_invitations(other) == 0
        match = re.search(LINK.format(bot="consulta_test_bot"), result.stdout)
        assert match is not None, result.stdout
        with storage.make_sessions(engine)() as s:
            inv = invitations.find(s, match.group(1))
            assert inv is not None
            assert (inv.name, inv.comuna, inv.contact) == ("Ana Rojas", "vicuna", "+56 9 8765 4321")
            assert inv.expires_at - inv.created_at == timedelta(days=30)  # the default
            assert s.scalar(select(func.count()).select_from(Participant)) == 0
    finally:
        engine.dispose()


EXCEL_ES = (  # "CSV (delimitado por comas)" saved by Excel in Spanish: cp1252, ';', CRLF
    "Nombre;Cargo;Comuna;Teléfono\r\n"
    "Ana Rojas;Alcaldesa;Paiguano;+56 9 1111 1111\r\n"
    ";;;\r\n"
    "Óscar Núñez;Secretario municipal;Vicuña;\r\n"
    "Eva Araya;Concejala;Paihuano;\r\n"
)


def test_a_list_saved_by_excel_in_spanish(tmp_path: Path, sessions: sessionmaker[Session],
                                         database_url: str) -> None:  # fmt: skip
    env = environment(database_url, CONSULTA_BOT_USERNAME="consulta_bot")
    contacts = tmp_path / "contactos.csv"
    contacts.write_bytes(EXCEL_ES.encode("cp1252"))
    result = consulta("invite", "import", str(contacts), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [(r.name, r.comuna) for r in stored(sessions)] == [
        ("Ana Rojas", "paihuano"), ("Óscar Núñez", "vicuna"), ("Eva Araya", "paihuano"),
    ]  # fmt: skip

    latin = tmp_path / "latin.csv"  # Latin-1, ',' and a row of blanks
    latin.write_bytes("nombre,cargo,comuna\nLía Peña,Alcaldesa,Río Hurtado\n,,\n".encode("latin-1"))
    assert consulta("invite", "import", str(latin), env=env, cwd=tmp_path).returncode == 0
    assert stored(sessions)[-1].name == "Lía Peña"


def test_an_unknown_comuna_gets_the_closest_names(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}", CONSULTA_BOT_USERNAME="consulta_bot")
    contacts = tmp_path / "contactos.csv"
    contacts.write_bytes("Nombre;Cargo;Comuna\r\nAna;Alcaldesa;Cokimbo\r\n".encode("cp1252"))
    result = consulta("invite", "import", str(contacts), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "línea 2: comuna desconocida 'Cokimbo'; ¿quiso decir «Coquimbo»" in result.stderr


def test_a_file_that_cannot_be_read_gets_one_sentence(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}", CONSULTA_BOT_USERNAME="consulta_bot")
    book = tmp_path / "contactos.csv"  # an Excel workbook under a .csv name
    book.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    result = consulta("invite", "import", str(book), env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "CSV UTF-8" in result.stderr

    one_column = tmp_path / "nombres.csv"
    one_column.write_bytes("Nombre\r\nAna Rojas\r\n".encode("cp1252"))
    result = consulta("invite", "import", str(one_column), env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "falta(n) la(s) columna(s) cargo, comuna" in result.stderr


def test_reissue_checks_first_and_revives_a_revoked_link_only_on_request(
    tmp_path: Path, sessions: sessionmaker[Session], database_url: str
) -> None:
    env = environment(database_url, CONSULTA_BOT_USERNAME="consulta_bot")
    contacts = tmp_path / "contactos.csv"
    contacts.write_text(GOOD, encoding="utf-8")
    imported = consulta("invite", "import", str(contacts), env=env, cwd=tmp_path)
    tokens = re.findall(LINK.format(bot="consulta_bot"), imported.stdout)
    ana, beto = (r.id for r in stored(sessions)[:2])

    no_name = consulta("invite", "reissue", str(ana), env=environment(database_url), cwd=tmp_path)
    assert no_name.returncode == 2 and "no se cambió nada" in no_name.stderr
    with sessions() as s:
        assert invitations.find(s, tokens[0]) is not None  # the link still works

    assert consulta("invite", "revoke", str(beto), env=env, cwd=tmp_path).returncode == 0
    refused = consulta("invite", "reissue", str(beto), env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "--revoked" in refused.stderr
    with sessions() as s:
        assert (
            invitations.check(invitations.find(s, tokens[1]), "9", datetime.now(UTC)) == "revoked"
        )
    revived = consulta("invite", "reissue", str(beto), "--revoked", env=env, cwd=tmp_path)
    assert revived.returncode == 0, revived.stderr
    (token,) = re.findall(LINK.format(bot="consulta_bot"), revived.stdout)
    with sessions() as s:
        assert invitations.check(invitations.find(s, token), "9", datetime.now(UTC)) == "ok"

    listed = consulta("invite", "list", env=env, cwd=tmp_path)
    assert "  Ovalle: 1 · 0 · 0" in listed.stdout
    silent = next(x for x in listed.stdout.splitlines() if x.startswith("Comunas sin ningún"))
    assert "Coquimbo" in silent and "Ovalle" not in silent and "Fuera de la región" not in silent
