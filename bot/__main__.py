"""``python -m bot`` is the ``consulta`` command."""

from bot.cli.main import app

app(prog_name="consulta")
