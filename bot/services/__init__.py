"""What the adapter calls: the conversation, reporting (digests, exports, /resultados),
reminders, closing, organisers' commands and the scheduler's election.

May import bot.infra, flows, storage and reports; never bot.adapter or bot.cli. Messages go
out through the ``Outbox`` the adapter hands in (bot.services.outbox).
"""
