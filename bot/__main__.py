"""``python -m bot`` is the ``consulta`` command."""

from bot.cli import app

app(prog_name="consulta")
