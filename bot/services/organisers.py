"""Organiser commands in the bot: /invitar and /avance, for the ids in CONSULTA_ORGANISERS.

A stranger gets a polite refusal and nothing changes. Each command claims its update id
in the same transaction as its effect, so a redelivered /invitar creates nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from telegram import Update
from telegram.ext import CommandHandler, ContextTypes, filters

import storage
from bot.adapter.sending import deliver
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from flows.events import Reply
from storage import invitations
from storage.models import Participant

SETTINGS = "settings"


def _context(context: ContextTypes.DEFAULT_TYPE) -> tuple[Conversation, Settings]:
    data = context.application.bot_data
    return data["conversation"], data[SETTINGS]


async def _allowed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    conv, settings = _context(context)
    user, chat = update.effective_user, update.effective_chat
    if user is not None and user.id in settings.consulta_organisers:
        return True
    if chat is not None:
        await deliver(context.bot, chat.id, [Reply(conv.definition.messages.organiser_only)])
    return False


def split_comuna(conv: Conversation, text: str) -> tuple[str | None, str]:
    """``"Monte Patria Ana Rojas"`` → ``("monte_patria", "Ana Rojas")``: the longest run of
    leading words that names a comuna, and the rest."""
    words = text.split()
    profile = conv.definition.consultation.profile
    for n in range(min(3, len(words)), 0, -1):
        comuna = profile.find_comuna(" ".join(words[:n]))
        if comuna is not None and comuna != profile.outside.id:
            return comuna, " ".join(words[n:])
    return None, text


async def on_invite(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/invitar <comuna> <nombre>: a personal link for a municipal contact."""
    if not await _allowed(update, context):
        return
    conv, settings = _context(context)
    m = conv.definition.messages
    assert update.effective_chat is not None
    comuna, name = split_comuna(conv, " ".join(context.args or []))
    labels = {c.id: c.label for c in conv.definition.consultation.profile.comunas()}
    if not context.args:
        text = m.invite_usage
    elif comuna is None:
        names = ", ".join(label for cid, label in labels.items() if cid != "fuera_region")
        text = m.invite_unknown_comuna.format(text=" ".join(context.args), comunas=names)
    elif not name:
        text = m.invite_usage
    else:
        institution = m.invite_institution.format(comuna=labels[comuna])
        now = conv.clock()
        ttl = timedelta(days=settings.consulta_invite_days)
        with conv.sessions.begin() as session:
            if not storage.claim_update(session, conv.channel, update.update_id, now):
                return
            invitation, token = invitations.create(
                session, name=name, institution=institution, comuna=comuna, contact=None,
                now=now, ttl=ttl,
            )  # fmt: skip
            invitation_id = invitation.id
        expires = (now + ttl).astimezone(settings.zone).strftime("%d-%m-%Y")
        link = f"https://t.me/{context.bot.username}?start={token}"
        text = m.invite_created.format(id=invitation_id, name=name, institution=institution,
                                       expires=expires, link=link)  # fmt: skip
    await deliver(context.bot, update.effective_chat.id, [Reply(text)])


async def on_progress(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/avance: per comuna, invited / joined / finished, municipal contacts and citizens apart."""
    if not await _allowed(update, context):
        return
    conv, _ = _context(context)
    m = conv.definition.messages
    comunas = conv.definition.consultation.profile.comunas()
    labels = {c.id: c.label for c in comunas}
    with conv.sessions() as session:
        rows = invitations.progress(session, [c.id for c in comunas])
        participants, finished = session.execute(
            select(func.count(Participant.consented_at), func.count(Participant.finished_at))
        ).one()
    lines = [m.progress_header, ""]
    for r in rows:
        counts = {k: v for k, v in vars(r).items() if k != "comuna"}
        lines.append(m.progress_line.format(comuna=labels.get(r.comuna, r.comuna), **counts))
    lines += ["", m.progress_totals.format(participants=participants, finished=finished)]
    assert update.effective_chat is not None
    await deliver(context.bot, update.effective_chat.id, [Reply("\n".join(lines))])


def handlers() -> list[CommandHandler]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("invitar", on_invite, filters=private),
        CommandHandler("avance", on_progress, filters=private),
    ]
