"""Organisers: who they are (``is_organiser``, the one access rule) and their commands in
the bot, /invitar and /avance.

Each command that changes something claims its update id in the same transaction as its
effect, so a redelivered /invitar creates nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

import storage
from bot.infra.config import Settings
from bot.services.conversation import Conversation
from reports import disclosure
from reports.disclosure import people
from storage import invitations
from storage.models import Participant


def is_organiser(settings: Settings, user_id: int | None) -> bool:
    """Whether the account ``user_id`` may use organisers' commands (CONSULTA_ORGANISERS)."""
    return user_id is not None and user_id in settings.consulta_organisers


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


def invite(
    conv: Conversation, settings: Settings, args: str, update_id: int, bot_username: str
) -> str | None:
    """/invitar <comuna> <nombre>: a personal link for a municipal contact. Returns the
    answer for the organiser, or None if this update was already applied."""
    m = conv.definition.messages
    profile = conv.definition.consultation.profile
    comuna, name = split_comuna(conv, args)
    labels = {c.id: c.label for c in profile.comunas()}
    if not args.strip() or (comuna is not None and not name):
        return m.invite_usage
    if comuna is None:
        names = ", ".join(label for cid, label in labels.items() if cid != profile.outside.id)
        return m.invite_unknown_comuna.format(text=args.strip(), comunas=names)
    institution = m.invite_institution.format(comuna=labels[comuna])
    now = conv.clock()
    ttl = timedelta(days=settings.consulta_invite_days)
    with conv.sessions.begin() as session:
        if not storage.claim_update(session, conv.channel, update_id, now):
            return None
        invitation, token = invitations.create(
            session, name=name, institution=institution, comuna=comuna, contact=None,
            now=now, ttl=ttl,
        )  # fmt: skip
        invitation_id = invitation.id
    expires = (now + ttl).astimezone(settings.zone).strftime("%d-%m-%Y")
    link = f"https://t.me/{bot_username}?start={token}"
    return m.invite_created.format(id=invitation_id, name=name, institution=institution,
                                   expires=expires, link=link)  # fmt: skip


def progress(conv: Conversation) -> str:
    """/avance: per comuna, invited / joined / finished, municipal contacts and citizens apart."""
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
        # people who joined go through disclosure control like every published count; the
        # invitations are the organisers' own figures
        counts = {k: v if k == "invited" else people(v) for k, v in vars(r).items()
                  if k != "comuna"}  # fmt: skip
        lines.append(m.progress_line.format(comuna=labels.get(r.comuna, r.comuna), **counts))
    totals = m.progress_totals.format(participants=people(participants), finished=people(finished))
    lines += ["", f"{totals} ({disclosure.NOTE})"]
    return "\n".join(lines)
