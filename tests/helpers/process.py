"""The bot as a real process (``python -m bot run``, or ``webhook``), against a Bot API
stand-in of the test process: what a deployment runs, killed and restarted as a deployment
may be."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.botapi import BotApiStandIn

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    """``consulta run`` with its settings in the environment; its output goes to
    ``<log_dir>/<name>-<n>.log`` (one file per start), shown by :meth:`tail` on failure."""

    def __init__(self, api: BotApiStandIn, database_url: str, log_dir: Path, name: str = "bot",
                 command: str = "run", **settings: str) -> None:  # fmt: skip
        """``command``: ``run`` (long polling) or ``webhook`` (its port and secret among the
        ``settings``: CONSULTA_WEBHOOK_PORT, TELEGRAM_WEBHOOK_SECRET)."""
        self.log_dir, self.name, self.command = log_dir, name, command
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CONSULTA_"))}
        env.update(
            TELEGRAM_BOT_TOKEN=api.token,
            TELEGRAM_BASE_URL=api.base_url,
            DATABASE_URL=database_url,
            CONSULTA_RATE_LIMIT="0",  # the stand-in has no flood control here
            PYTHONPATH=str(REPO),
            **settings,
        )
        self.env = env
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
            # cwd: the log folder, so that no .env file of the developer's is read
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", self.command],
                env=self.env, cwd=self.log_dir, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or confirmed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.wait()

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as a supervisor stops a service; returns the exit status."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
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
