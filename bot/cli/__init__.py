"""The ``consulta`` command line: runs the bot, the webhook, reports, invitations, the demo.

May import everything of ours; nothing imports it.
"""
