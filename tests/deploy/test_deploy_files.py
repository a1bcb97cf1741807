"""The files of deploy/, checked so that they and the docs that point at them cannot rot.

Always: the systemd units start real ``consulta`` commands, set only real settings; the
proxies forward the webhook path of .env.example to the replicas' ports, with a 1 MiB body
limit; the sample contacts CSV imports with the real importer. With the tool installed
(Debian: systemd, nginx, caddy): ``systemd-analyze verify``, ``nginx -t``, ``caddy validate``.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted(
    (DEPLOY / "systemd").glob("*.timer")
)
NGINX = DEPLOY / "nginx" / "consulta.conf"
CADDY = DEPLOY / "caddy" / "Caddyfile"
INSTALL_DIR = "/srv/consulta"  # where the units expect the clone, its .venv and its .env
CONSULTA = Path(sys.executable).parent / "consulta"  # the script `make install` made


def consulta_app() -> typer.Typer:
    """The typer app behind the ``consulta`` script, found as pyproject.toml declares it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    module, _, name = pyproject["project"]["scripts"]["consulta"].partition(":")
    app: typer.Typer = getattr(importlib.import_module(module), name)
    return app


def env_example() -> dict[str, str]:
    """The settings of .env.example and their defaults."""
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    return {key: value for key, value in pairs}


def unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit as ``Section.Key`` -> values (a key may repeat, as Environment= does)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def nginx_upstreams() -> tuple[list[str], list[str]]:
    """(the ``server`` addresses of the upstream, the exact ``location =`` paths)."""
    text = NGINX.read_text(encoding="utf-8")
    upstream = re.search(r"upstream\s+consulta\s*\{(.*?)\}", text, re.DOTALL)
    assert upstream is not None
    return (
        re.findall(r"^\s*server\s+([\d.]+:\d+);", upstream.group(1), re.MULTILINE),
        re.findall(r"location\s*=\s*(\S+)\s*\{", text),
    )


def caddy_upstreams() -> tuple[list[str], list[str]]:
    """(the ``reverse_proxy`` addresses, the ``handle`` paths)."""
    text = CADDY.read_text(encoding="utf-8")
    proxies = re.findall(r"reverse_proxy\s+([^{\n]+)", text)
    return [a for p in proxies for a in p.split()], re.findall(r"handle\s+(\S+)\s*\{", text)


# --- always ---------------------------------------------------------------------------------


def test_units_start_real_consulta_commands() -> None:
    runner = CliRunner()
    app = consulta_app()
    started = []
    for path in UNITS:
        for command in unit(path).get("Service.ExecStart", []):
            program, *args = shlex.split(command)
            if program == f"{INSTALL_DIR}/.venv/bin/consulta":
                # --help after the arguments: exit 0 only if every argument and option exists
                result = runner.invoke(app, [*args, "--help"])
                assert result.exit_code == 0, f"{path.name}: {command}: {result.output}"
                started.append(args[0])
            else:
                assert program.startswith(f"{INSTALL_DIR}/"), f"{path.name}: {program}"
                script = ROOT / program.removeprefix(f"{INSTALL_DIR}/")
                assert os.access(script, os.X_OK), f"{path.name}: {script} is not executable"
    assert sorted(started) == ["run", "webhook"]


def test_units_set_only_settings_that_exist() -> None:
    known = env_example()
    for path in UNITS:
        for assignment in unit(path).get("Service.Environment", []):
            key = assignment.split("=", 1)[0]
            assert key in known, f"{path.name}: {key} is not a setting of .env.example"
    webhook = unit(DEPLOY / "systemd" / "consulta-webhook@.service")
    assert "CONSULTA_WEBHOOK_PORT=%i" in webhook["Service.Environment"]
    assert webhook["Service.WorkingDirectory"] == [INSTALL_DIR]  # where consulta reads .env


def test_production_env_file_uses_the_defaults_the_proxies_expect() -> None:
    known = env_example()
    lines = (DEPLOY / "consulta.env").read_text(encoding="utf-8").splitlines()
    production = dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    assert set(production) <= set(known), set(production) - set(known)
    for key in ("CONSULTA_WEBHOOK_LISTEN", "CONSULTA_WEBHOOK_PATH"):
        assert production[key] == known[key]
    assert production["CONSULTA_WEBHOOK_URL"].endswith(known["CONSULTA_WEBHOOK_PATH"])
    assert production["DATABASE_URL"].startswith("postgresql+psycopg://")  # replicas need it


def test_both_proxies_forward_the_webhook_path_to_the_same_replicas() -> None:
    defaults = env_example()
    nginx_servers, nginx_paths = nginx_upstreams()
    caddy_servers, caddy_paths = caddy_upstreams()
    assert nginx_paths == caddy_paths == [defaults["CONSULTA_WEBHOOK_PATH"]]
    assert nginx_servers == caddy_servers
    assert len(nginx_servers) >= 2  # a restart never leaves Telegram without an answer
    for address in nginx_servers:
        host, port = address.split(":")
        assert host == defaults["CONSULTA_WEBHOOK_LISTEN"]
        assert 1024 <= int(port) <= 65535
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    ports = " ".join(f"consulta-webhook@{a.split(':')[1]}" for a in nginx_servers)
    assert f"systemctl enable --now {ports}" in guide


def test_both_proxies_refuse_bodies_over_one_mib() -> None:
    assert re.search(r"^\s*client_max_body_size\s+1m;", NGINX.read_text(), re.MULTILINE)
    assert re.search(r"^\s*max_size\s+1MiB$", CADDY.read_text(), re.MULTILINE)


def test_sample_contacts_import_with_the_real_importer(tmp_path: Path) -> None:
    sample = DEPLOY / "contactos-ejemplo.csv"
    assert sample.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's "CSV UTF-8"
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": f"sqlite:///{tmp_path / 'consulta.db'}",
        "CONSULTA_BOT_USERNAME": "ConsultaCoquimboBot",
    }
    done = subprocess.run(
        [str(CONSULTA), "invite", "import", str(sample), "--out", str(tmp_path / "links.csv")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "consulta.db") as db:
        stored = db.execute("SELECT name, comuna FROM invitations ORDER BY id").fetchall()
    rows = sample.read_text(encoding="utf-8-sig").splitlines()[1:]
    assert [name for name, _ in stored] == [row.split(";")[0] for row in rows]
    assert ("Carmen Gloria Alfaro Díaz", "rio_hurtado") in stored


# --- with the tools -------------------------------------------------------------------------


def needs(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: apt-get install {tool}); checked by parser")
    return path


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = needs("systemd-analyze")
    paths = []
    for path in UNITS:
        text = path.read_text(encoding="utf-8")
        text = text.replace(f"{INSTALL_DIR}/.venv/bin/consulta", str(CONSULTA))
        text = text.replace(f"{INSTALL_DIR}/deploy/", f"{DEPLOY}/")
        name = path.name.replace("@.", "@8081.")  # a template is verified as an instance
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    done = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True)
    # unknown keys and bad values are only warnings: any line about our units is a failure
    ours = [
        line for line in done.stderr.splitlines() if str(tmp_path) in line or "consulta" in line
    ]
    assert done.returncode == 0 and ours == [], done.stderr


def nginx_for_test(tmp_path: Path, listen: str = "", servers: tuple[str, ...] = ()) -> list[str]:
    """The nginx command line that loads the site under a scratch prefix, with a self-signed
    certificate; ``listen`` and ``servers`` replace its public port and its replicas."""
    nginx, openssl = needs("nginx"), needs("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=consulta.example.cl", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    site = NGINX.read_text(encoding="utf-8")
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    if listen:
        site = site.replace("listen 443 ssl;", f"listen {listen} ssl;")
    if servers:
        found, _ = nginx_upstreams()
        for old, new in zip(found, servers, strict=True):
            site = site.replace(f"server {old};", f"server {new};")
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the scratch prefix
    (tmp_path / "nginx.conf").write_text(
        f"{user}daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    return [nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)]


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    done = subprocess.run([*nginx_for_test(tmp_path), "-t"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


class Replica(ThreadingHTTPServer):
    """A stand-in for a webhook replica: records what reaches it, answers ``status``."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.seen: list[tuple[str, str | None, bytes]] = []
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                secret = self.headers.get("X-Telegram-Bot-Api-Secret-Token")
                replica.seen.append((self.path, secret, body))
                self.send_response(replica.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


def test_nginx_passes_updates_and_the_secret_on_and_refuses_large_bodies(
    tmp_path: Path,
) -> None:
    stopping, up = Replica(503), Replica(200)  # a replica that is stopping, and one that is up
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = nginx_for_test(tmp_path, f"127.0.0.1:{port}", (stopping.address, up.address))
    server = subprocess.Popen(command)
    try:
        url = f"https://127.0.0.1:{port}"
        with httpx.Client(verify=False, headers={"Host": "consulta.example.cl"}) as client:
            for _ in range(50):
                try:
                    client.get(url)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret_-token"}
            update = b'{"update_id": 1}'
            for _ in range(2):  # between two idle replicas, least_conn takes turns
                answer = client.post(f"{url}/telegram", content=update, headers=secret)
                assert answer.status_code == 200
            assert up.seen == [("/telegram", "s3cret_-token", update)] * 2
            assert stopping.seen[:1] == up.seen[:1]  # tried, answered 503, tried the other
            large = client.post(f"{url}/telegram", content=b"x" * ((1 << 20) + 1), headers=secret)
            assert large.status_code == 413
            assert client.get(f"{url}/healthz").status_code == 404
            assert client.post(f"{url}/metrics", content=update).status_code == 404
        assert len(up.seen) == 2
    finally:
        server.terminate()
        server.wait(timeout=10)
        for replica in (stopping, up):
            replica.shutdown()
            replica.server_close()


def test_caddy_accepts_the_caddyfile(tmp_path: Path) -> None:
    caddy = needs("caddy")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run(
        [caddy, "validate", "--config", str(CADDY), "--adapter", "caddyfile"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
