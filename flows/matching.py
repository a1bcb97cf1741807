"""Type or tap: which offered button a typed text means.

People on a phone type what a button says ("si", "hombre", "la serena", "peru") instead of
tapping it. ``candidates`` finds the buttons a text names, ignoring case, accents, emoji and
check marks, and forgiving one or two wrong letters in a word of five or more (rapidfuzz).
A short yes/no/done word means the button of that role where one is offered.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence
from typing import Literal

from rapidfuzz.distance import Levenshtein

from flows.events import Button

Role = Literal["yes", "no", "done"]

YES_WORDS = frozenset({"si", "ok", "okay", "oka", "dale", "claro", "bueno", "acepto", "de acuerdo"})
NO_WORDS = frozenset({"no", "nop", "no gracias"})
DONE_WORDS = frozenset(
    {"listo", "ok", "okay", "siguiente", "continuar", "seguir", "ya", "nada mas"}
)
CHATTER = frozenset(
    {"si", "ok", "okay", "bueno", "gracias", "muchas", "nada", "hola", "ya", "listo", "dale",
     "eso", "es", "todo", "ninguno", "ninguna", "nop", "no", "mmm", "chao", "vale", "perfecto",
     "entendido", "mas"}
)  # fmt: skip
STOP_WORDS = frozenset(
    {"a", "al", "con", "de", "del", "el", "en", "la", "las", "lo", "los", "o", "para", "por",
     "que", "se", "su", "sus", "un", "una", "y"}
)  # fmt: skip


def fold(text: str) -> str:
    """``" ✅ Río  Hurtado! "`` → ``"rio hurtado"``: lower case, no accents, no emoji or
    punctuation, single spaces. The one way Consulta compares what people type."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(
        ch if unicodedata.category(ch)[0] in "LN" else " "
        for ch in decomposed
        if not unicodedata.combining(ch)
    )
    return " ".join(kept.split())


def candidates(
    text: str, buttons: Sequence[Button], role: Callable[[Button], Role | None]
) -> list[Button]:
    """The buttons ``text`` names, best kind of match only (several: the text is ambiguous).

    In order: a yes/no/done word and a button of that role; the whole label; the whole label
    with a letter or two wrong; every word of the text (one at least of four letters or more,
    not a stop word) found in the label.
    """
    wanted = fold(text)
    if not wanted:
        return []
    unique = list({b.data: b for b in buttons}.values())
    for words, kinds in (
        (YES_WORDS, ("yes",)),
        (NO_WORDS, ("no", "done")),
        (DONE_WORDS, ("done", "yes")),
    ):
        if wanted in words:
            for kind in kinds:
                found = [b for b in unique if role(b) == kind]
                if found:
                    return found
    labels = [(b, _folded_label(b.label)) for b in unique]
    exact = [b for b, label in labels if label == wanted]
    if exact:
        return exact
    near = [b for b, label in labels if _near(wanted, label)]
    if near:
        return near
    typed = [w for w in wanted.split() if w not in STOP_WORDS]
    if not any(len(w) >= 4 for w in typed):
        return []
    return [b for b, label in labels if all(_in_words(w, label.split()) for w in typed)]


@functools.lru_cache(maxsize=4096)
def _folded_label(label: str) -> str:
    """``fold`` of a button's label, kept: the same few hundred labels are offered to every
    participant, and folding is most of the time spent matching (bench.updates --profile)."""
    return fold(label)


def _near(typed: str, label: str) -> bool:
    """Equal but for one wrong letter (five to seven letters) or two (eight or more)."""
    allowed = 0 if len(label) < 5 else 1 if len(label) < 8 else 2
    return allowed > 0 and Levenshtein.distance(typed, label, score_cutoff=allowed) <= allowed


def _in_words(word: str, words: list[str]) -> bool:
    return any(word == w or _near(word, w) for w in words)


def is_chatter(text: str) -> bool:
    """Whether ``text`` may be conversation ("sí", "gracias", "nada más", "cooperar") rather
    than an answer in its own right: a single word, or only words of conversation."""
    words = fold(text).split()
    return len(words) <= 1 or all(w in CHATTER for w in words)
