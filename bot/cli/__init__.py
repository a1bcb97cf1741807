"""The ``consulta`` command line: runs the bot, the webhook, reports, invitations, the demo.

May import everything of ours; nothing imports it.
"""

from bot.cli import translations

translations.install()  # before Click and Typer are imported: their own words in Spanish
