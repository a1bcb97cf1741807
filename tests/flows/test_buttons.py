"""The button grammar: every kind reads back as itself; anything else reads as None."""

from __future__ import annotations

import pytest

from flows import buttons as bt

EXAMPLES = [
    bt.Consent(True),
    bt.Consent(True, "tok_en-1"),
    bt.Consent(False),
    bt.StopReminders(),
    bt.Province("elqui"),
    bt.Province(),
    bt.Comuna("rio_hurtado"),
    bt.AgeBand("e18_29"),
    bt.Gender("mujer"),
    bt.Skip("ask", "q1"),
    bt.Skip("gender", ""),
    bt.Agree("a", "de_acuerdo"),
    bt.ReasonStill("a", True),
    bt.Facts("q2"),
    bt.Toggle("q1", "peru"),
    bt.Next("q1"),
    bt.SaveText("q1", False),
    bt.System("q1.t12", "ambiental"),
    bt.Judge("q1.o.cooperar_peru", "si"),
    bt.Done("q5"),
    bt.Close(),
    bt.GoTo("q3"),
    bt.ReviewItem("p.q2.t3"),
    bt.ReviewBack(),
    bt.ReviewEdit("q2.t3"),
    bt.ReviewGoTo("q2.t3"),
    bt.ReviewDelete("q2.t3"),
    bt.ReviewDelete("q2.t3", confirmed=True),
    bt.ProfileEdit("gender"),
    bt.Erase(True),
]


def test_every_kind_has_an_example() -> None:
    assert {type(b) for b in EXAMPLES} == set(bt.KINDS.values())


@pytest.mark.parametrize("button", EXAMPLES, ids=lambda b: b.encode())
def test_a_button_reads_back_as_itself(button: bt.ButtonData) -> None:
    data = button.encode()
    assert len(data.encode("utf-8")) <= bt.MAX_DATA
    assert bt.decode(data) == button


def test_the_wire_format_of_buttons_already_sent_is_kept() -> None:
    assert bt.decode("c:y") == bt.Consent(True)
    assert bt.decode("ag:a:en_parte") == bt.Agree("a", "en_parte")
    assert bt.decode("bz:n") == bt.Erase(False)
    assert bt.decode("nr") == bt.StopReminders()
    assert bt.decode("s:province:") == bt.Skip("province", "")


@pytest.mark.parametrize(
    "data",
    [
        "",
        "zz",
        "zz:1",
        "c",
        "c:maybe",
        "c:y:",
        "ag:a",
        "ag:a:b:c",
        "x:1",
        "s:ask",
        "bz",
        "y" * 65,
        "o:q1:" + "a" * 70,
        "rb:",
        "ab:1:2",
    ],
)
def test_anything_else_is_not_a_button(data: str) -> None:
    assert bt.decode(data) is None


def test_data_that_would_not_fit_or_not_read_back_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        bt.Toggle("q1", "x" * 64).encode()
    with pytest.raises(ValueError, match="':'"):
        bt.Toggle("q1", "a:b").encode()
