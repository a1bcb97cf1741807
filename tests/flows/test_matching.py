"""Type or tap: which offered button a typed text names."""

from __future__ import annotations

import pytest

from flows.events import Button
from flows.matching import Role, candidates, fold, is_chatter

YES, NO, NEXT = (
    Button("Sí, acepto participar", "c:y"),
    Button("No, gracias", "c:n"),
    Button("Siguiente pregunta ➡️", "n:q1"),
)
OPTIONS = [Button("Cooperar con Cuba", "o:q2:cuba"), Button("Cooperar con Canadá", "o:q2:canada"),
           Button("✅ Buenas prácticas en salud", "o:q2:salud")]  # fmt: skip
ROLES: dict[str, Role] = {"c:y": "yes", "c:n": "no", "n:q1": "done"}


def named(text: str, buttons: list[Button]) -> list[str]:
    return [b.data for b in candidates(text, buttons, lambda b: ROLES.get(b.data))]


def test_fold_ignores_case_accents_emoji_and_punctuation() -> None:
    assert fold("  ✅ Río  Hurtado! ") == "rio hurtado"
    assert fold("SÍ, ACEPTO 👍") == "si acepto"


@pytest.mark.parametrize(
    ("typed", "data"),
    [("si", ["c:y"]), ("Sí", ["c:y"]), ("ok", ["c:y"]), ("no", ["c:n"]), ("sí acepto", ["c:y"]),
     ("no gracias", ["c:n"]), ("hola", [])],
)  # fmt: skip
def test_yes_and_no_words(typed: str, data: list[str]) -> None:
    assert named(typed, [YES, NO]) == data


@pytest.mark.parametrize(
    ("typed", "data"),
    [("listo", ["n:q1"]), ("siguiente", ["n:q1"]), ("cooperar con cuba", ["o:q2:cuba"]),
     ("cooperar con cubaa", ["o:q2:cuba"]), ("canada", ["o:q2:canada"]),
     ("cooperar", ["o:q2:cuba", "o:q2:canada"]), ("salud", ["o:q2:salud"]),
     ("Buenas prácticas en salud", ["o:q2:salud"]), ("con", []), ("cuna", [])],
)  # fmt: skip
def test_labels_words_and_near_misses(typed: str, data: list[str]) -> None:
    assert named(typed, [*OPTIONS, NEXT]) == data


@pytest.mark.parametrize(
    ("text", "chatter"),
    [("sí", True), ("gracias", True), ("nada más", True), ("Turismo", True),
     ("Más becas", False), ("Un puerto seco en Ovalle", False)],
)  # fmt: skip
def test_chatter(text: str, chatter: bool) -> None:
    assert is_chatter(text) is chatter
