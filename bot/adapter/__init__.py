"""The Telegram adapter: PTB handlers, sending, polling and the webhook server.

May import bot.services, bot.infra, flows, storage and reports; nothing imports it but
bot.cli.
"""
