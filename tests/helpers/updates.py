"""Builders for real PTB ``Update`` objects, to push into :class:`BotApiStandIn`.

Each builder returns a ``telegram.Update`` whose ``to_dict()`` is what Telegram would send.
Message ids default to the update id; private chats have ``chat.id == user_id``.
"""

from __future__ import annotations

import datetime as dtm
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    Contact,
    Document,
    Location,
    Message,
    MessageEntity,
    PhotoSize,
    Poll,
    PollOption,
    Sticker,
    Update,
    User,
    Voice,
)

from .botapi import BOT_FIRST_NAME, BOT_ID, BOT_USERNAME

FIXED_DATE = dtm.datetime(2025, 1, 15, 12, 0, tzinfo=dtm.UTC)
BOT = User(BOT_ID, BOT_FIRST_NAME, is_bot=True, username=BOT_USERNAME)


def private_user(user_id: int, first_name: str = "Ana") -> User:
    return User(user_id, first_name, is_bot=False, language_code="es")


def _chat(user_id: int, chat_type: str = "private", chat_id: int | None = None) -> Chat:
    if chat_type == Chat.PRIVATE:
        return Chat(chat_id or user_id, Chat.PRIVATE, first_name="Ana")
    default_id = -user_id if chat_type == Chat.GROUP else -(10**12) - user_id
    return Chat(chat_id or default_id, chat_type, title="Test group")


def _message_update(
    update_id: int,
    user_id: int,
    *,
    chat_type: str = "private",
    chat_id: int | None = None,
    message_id: int | None = None,
    edited: bool = False,
    **content: Any,
) -> Update:
    message = Message(
        message_id or update_id,
        FIXED_DATE,
        _chat(user_id, chat_type, chat_id),
        from_user=private_user(user_id),
        edit_date=FIXED_DATE if edited else None,
        **content,
    )
    if edited:
        return Update(update_id, edited_message=message)
    return Update(update_id, message=message)


def text_update(
    update_id: int,
    user_id: int,
    text: str,
    *,
    chat_type: str = "private",
    edited: bool = False,
    chat_id: int | None = None,
    message_id: int | None = None,
) -> Update:
    """A text message; text starting with "/" gets the ``bot_command`` entity that
    CommandHandler needs (length in UTF-16 code units, as Telegram counts)."""
    entities = None
    if text.startswith("/"):
        command = text.split()[0]
        entities = [
            MessageEntity(MessageEntity.BOT_COMMAND, 0, len(command.encode("utf-16-le")) // 2)
        ]
    return _message_update(
        update_id,
        user_id,
        chat_type=chat_type,
        chat_id=chat_id,
        message_id=message_id,
        edited=edited,
        text=text,
        entities=entities,
    )


def callback_update(
    update_id: int,
    user_id: int,
    data: str,
    *,
    message_id: int = 1,
    message_text: str = "…",
) -> Update:
    """A button press on message ``message_id`` that the bot sent in the private chat."""
    message = Message(message_id, FIXED_DATE, _chat(user_id), from_user=BOT, text=message_text)
    query = CallbackQuery(
        f"cbq-{update_id}", private_user(user_id), f"ci-{user_id}", message=message, data=data
    )
    return Update(update_id, callback_query=query)


def photo_update(
    update_id: int,
    user_id: int,
    *,
    caption: str | None = None,
    file_id: str = "PHOTO-IN",
) -> Update:
    sizes = [
        PhotoSize(f"{file_id}-s", f"{file_id}-us", 90, 68, 1200),
        PhotoSize(file_id, f"{file_id}-u", 1280, 960, 98000),
    ]
    return _message_update(update_id, user_id, photo=sizes, caption=caption)


def sticker_update(update_id: int, user_id: int, *, emoji: str = "👍") -> Update:
    sticker = Sticker(
        "STICKER-IN",
        "STICKER-U",
        512,
        512,
        is_animated=False,
        is_video=False,
        type=Sticker.REGULAR,
        emoji=emoji,
    )
    return _message_update(update_id, user_id, sticker=sticker)


def voice_update(update_id: int, user_id: int, *, seconds: int = 3) -> Update:
    voice = Voice(
        "VOICE-IN", "VOICE-U", dtm.timedelta(seconds=seconds), mime_type="audio/ogg", file_size=4000
    )
    return _message_update(update_id, user_id, voice=voice)


def location_update(
    update_id: int,
    user_id: int,
    *,
    latitude: float = 40.4168,
    longitude: float = -3.7038,
) -> Update:
    return _message_update(update_id, user_id, location=Location(longitude, latitude))


def document_update(
    update_id: int,
    user_id: int,
    *,
    file_name: str = "propuesta.pdf",
    mime_type: str = "application/pdf",
    caption: str | None = None,
) -> Update:
    document = Document(
        "DOC-IN", "DOC-U", file_name=file_name, mime_type=mime_type, file_size=20480
    )
    return _message_update(update_id, user_id, document=document, caption=caption)


def contact_update(update_id: int, user_id: int, *, phone: str = "+56912345678") -> Update:
    return _message_update(update_id, user_id, contact=Contact(phone, "Ana", user_id=user_id))


def poll_update(update_id: int, user_id: int, *, question: str = "¿Sí o no?") -> Update:
    options = [PollOption(text, 0, persistent_id=str(n)) for n, text in enumerate(("Sí", "No"))]
    poll = Poll(f"poll-{update_id}", question, options, 0, False, False, Poll.REGULAR, False,
                allows_revoting=True, members_only=False)  # fmt: skip
    return _message_update(update_id, user_id, poll=poll)


def channel_post_update(update_id: int, text: str, *, channel_id: int = -(10**12) - 1) -> Update:
    """A post in a channel where the bot is an administrator (no sender user)."""
    entities = None
    if text.startswith("/"):
        length = len(text.split()[0].encode("utf-16-le")) // 2
        entities = [MessageEntity(MessageEntity.BOT_COMMAND, 0, length)]
    chat = Chat(channel_id, Chat.CHANNEL, title="Test channel")
    post = Message(update_id, FIXED_DATE, chat, sender_chat=chat, text=text, entities=entities)
    return Update(update_id, channel_post=post)
