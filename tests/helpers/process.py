"""Programs as real processes: the bot (``python -m bot run``, or ``webhook``) against a Bot
API stand-in, killed and restarted as a deployment may be, and the benchmarks' bots.

``ChildProcess`` is the common part (start with its output in a log file, SIGTERM, SIGKILL,
CPU and peak memory from Linux's /proc); ``BotProcess`` is ``consulta`` with its settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[2]


def bot_environment(
    base_url: str, token: str, database_url: str, **settings: str
) -> dict[str, str]:
    """This process's environment without any Telegram or Consulta setting of the
    developer's, plus the given ones (flood control off: the stand-in has none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONSULTA_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_BASE_URL=base_url,
        DATABASE_URL=database_url,
        CONSULTA_RATE_LIMIT="0",
        PYTHONPATH=str(REPO),
        **settings,
    )
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux's /proc; 0 if it is gone or elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ChildProcess:
    """A program started as ``command``; its output goes to ``<log_dir>/<name>-<n>.log``
    (one file per start), shown by :meth:`tail`."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log_dir: Path,
                 name: str, cwd: Path | None = None) -> None:  # fmt: skip
        self.command, self.env, self.log_dir, self.name = list(command), dict(env), log_dir, name
        self.cwd = cwd or log_dir  # the log folder: no .env file of the developer's is read
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or confirmed."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
        self.wait()

    def terminate(self) -> None:
        """SIGTERM, as a supervisor stops a service (without waiting for the end)."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait; returns the exit status."""
        self.terminate()
        return self.wait(timeout)

    def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def tail(self, lines: int = 30) -> str:
        """The end of the current run's output, for assertion messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float:
        """Peak RSS so far: Linux's VmHWM. (Not ``ru_maxrss`` from ``wait4``, which Linux
        starts at the parent's RSS at fork time: it would count the parent's memory.)"""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return float("nan")
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


class StandIn(Protocol):
    """What BotProcess needs of a Bot API stand-in (tests.helpers.botapi.BotApiStandIn)."""

    base_url: str
    token: str


class BotProcess(ChildProcess):
    """``consulta run`` (long polling) or ``consulta webhook`` against a stand-in, with its
    settings in the environment (for the webhook: CONSULTA_WEBHOOK_PORT and
    TELEGRAM_WEBHOOK_SECRET among ``settings``)."""

    def __init__(self, api: StandIn, database_url: str, log_dir: Path, name: str = "bot",
                 command: str = "run", **settings: str) -> None:  # fmt: skip
        env = bot_environment(api.base_url, api.token, database_url, **settings)
        super().__init__([sys.executable, "-m", "bot", command], env, log_dir, name)
