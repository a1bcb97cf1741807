"""The digest's charts: valid PNGs of the promised size, readable (large type, nothing cut
or overlapping, nothing outside the image), honest about empty data, deterministic, and
without leaking figures or touching pyplot."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from reports import charts

FOOTER = "Consulta RRII Coquimbo 2020 · 25-11-2026"
SUBTITLE = "Hasta el 25-11-2026 08:00 · 312 participantes"
OKABE_ITO = {"#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
SYSTEMS = ["Producción", "Social", "Ambiental", "Territorial", "Cultural", "Institucional"]
COMUNAS = [
    "La Serena",
    "Coquimbo",
    "Andacollo",
    "La Higuera",
    "Paihuano",
    "Vicuña",
    "Ovalle",
    "Combarbalá",
    "Monte Patria",
    "Punitaqui",
    "Río Hurtado",
    "Illapel",
    "Canela",
    "Los Vilos",
    "Salamanca",
    "Fuera de la región",
]
LONG = "Universidades, empresas y organizaciones sociales de la región"  # 62 characters


def options() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": [
                "Corredor bioceánico con San Juan",
                "Agua y consumo, con Hérault",
                "Energías alternativas",
                "Salud: adultos mayores, obesidad infantil",
                "Regiones vecinas de Chile",
                "Perú",
                LONG,
            ],
            "n": [143, 121, 156, 88, 120, 0, 1234],
            "new": [12, 15, 0, 4, 0, 0, 30],
        }
    )


def comunas() -> pd.DataFrame:
    citizens = [88, 64, 7, 0, 3, 12, 41, 5, 9, 0, 2, 18, 1, 6, 11, 9, 4]
    municipal = [2, 1, 1, 0, 0, 1, 2, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0]
    return pd.DataFrame({"citizens": citizens, "municipal": municipal}, index=[*COMUNAS, ""])


def by_system() -> pd.DataFrame:
    return pd.DataFrame(
        [[12, 8, 5, 3, 4, 9], [20, 14, 11, 6, 2, 7], [3, 5, 1, 9, 0, 14], [15, 22, 18, 7, 11, 6]],
        index=[f"Pregunta {i}" for i in range(1, 5)],
        columns=SYSTEMS,
    )


def judged() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": [
                "Corredor bioceánico con San Juan",
                "Energías alternativas",
                "Agua y consumo, con Hérault",
                LONG,
                "Perú",
                "Cuba",
            ],
            "chosen": [143, 156, 121, 101, 44, 9],
            "possible": [0.42, 0.61, 1 / 3, 0.55, 0.1, 0.0],
            "partial": [0.33, 0.25, 1 / 3, 0.3, 0.3, 0.0],
            "judged": [130, 140, 99, 90, 30, 0],
        }
    )


Builder = Callable[..., Figure]
CASES: list[tuple[str, Builder, Callable[[], pd.DataFrame]]] = [
    ("bars", charts.bars, options),
    ("participation", charts.participation, comunas),
    ("systems", charts.systems, by_system),
    ("feasibility", charts.feasibility, judged),
]
EMPTIES: dict[str, pd.DataFrame] = {
    "bars": pd.DataFrame(columns=["label", "n", "new"]),
    "participation": pd.DataFrame(columns=["citizens", "municipal"]),
    "systems": pd.DataFrame(columns=SYSTEMS),
    "feasibility": pd.DataFrame(columns=["label", "chosen", "possible", "partial", "judged"]),
}


def make(build: Builder, frame: pd.DataFrame, title: str = "Título", **kw: Any) -> Figure:
    return build(frame, title=title, subtitle=SUBTITLE, footer=FOOTER, **kw)


def render(build: Builder, frame: pd.DataFrame, title: str = "Título", **kw: Any) -> bytes:
    """The chart as the digest sends it: PNG bytes."""
    return charts.png(make(build, frame, title, **kw))


def texts(fig: Figure) -> list[Text]:
    """Every text drawn on the figure, in the order it was added."""
    fig.canvas.draw()
    drawn = [*fig.texts, *(t for ax in fig.axes for t in ax.texts)]
    return [t for t in drawn if t.get_visible() and t.get_text().strip()]


def strings(fig: Figure) -> list[str]:
    return [t.get_text() for t in texts(fig)]


def bars_of(fig: Figure) -> list[Rectangle]:
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]


def overlap(a: Bbox, b: Bbox, tolerance: float = 1.0) -> bool:
    return (
        a.x0 + tolerance < b.x1
        and b.x0 + tolerance < a.x1
        and a.y0 + tolerance < b.y1
        and b.y0 + tolerance < a.y1
    )


def assert_readable(fig: Figure, *, text_on_bars: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Large type, every text inside the image, no text over another text or over a bar
    (except the ``text_on_bars``, which must then sit inside one bar)."""
    canvas = Bbox.from_bounds(0, 0, *charts.SIZE_PX)
    drawn = texts(fig)
    assert drawn
    boxes = [t.get_window_extent() for t in drawn]
    for t, box in zip(drawn, boxes, strict=True):
        assert t.get_fontsize() >= charts.MIN_PT, t.get_text()
        assert canvas.contains(box.x0, box.y0) and canvas.contains(box.x1, box.y1), t.get_text()
    for i in range(len(drawn)):
        for j in range(i + 1, len(drawn)):
            assert not overlap(boxes[i], boxes[j]), (drawn[i].get_text(), drawn[j].get_text())
    rectangles = [r.get_window_extent() for r in bars_of(fig) if r.get_width() > 0]
    for t, box in zip(drawn, boxes, strict=True):
        if t.get_text() in text_on_bars:
            assert any(
                r.x0 <= box.x0 and box.x1 <= r.x1 and r.y0 - 2 <= box.y0 for r in rectangles
            ), t.get_text()
        else:
            assert not any(overlap(box, r) for r in rectangles), t.get_text()


# --- every chart ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    """Each chart of the realistic data, drawn once for the tests that only read the PNG."""
    return {name: render(build, data()) for name, build, data in CASES}


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_a_png_of_the_promised_size(name: str, images: dict[str, bytes]) -> None:
    image = images[name]
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(image)) as decoded:
        decoded.load()
        assert decoded.format == "PNG"
        assert decoded.size == charts.SIZE_PX == (1080, 1350)
        assert "Software" not in decoded.info  # no matplotlib version: the bytes stay stable
        assert len(decoded.convert("L").getcolors(256) or []) > 10  # not a blank image


def test_same_input_same_bytes_even_from_threads(images: dict[str, bytes]) -> None:
    def draw(case: tuple[str, Builder, Callable[[], pd.DataFrame]]) -> bytes:
        _, build, data = case
        return render(build, data())

    with ThreadPoolExecutor(max_workers=4) as pool:
        again = list(pool.map(draw, CASES))
    assert again == [images[name] for name, *_ in CASES]
    assert render(charts.bars, options(), title="Otro título") != images["bars"]


@pytest.mark.parametrize(("name", "build", "data"), CASES, ids=[c[0] for c in CASES])
def test_title_subtitle_and_footer_in_their_places(
    name: str, build: Builder, data: Callable[[], pd.DataFrame]
) -> None:
    fig = make(build, data(), title="Pregunta 2: ¿qué otras respuestas puede buscar la región?")
    by_text = {t.get_text(): t for t in texts(fig)}
    title = next(t for s, t in by_text.items() if s.startswith("Pregunta 2:"))
    assert title.get_fontweight() == "bold"
    assert title.get_fontsize() > charts.MIN_PT
    assert " ".join(title.get_text().split()) == (
        "Pregunta 2: ¿qué otras respuestas puede buscar la región?"
    )  # wrapped, not cut
    assert title.get_window_extent().y1 > max(
        t.get_window_extent().y1 for t in by_text.values() if t is not title
    )  # on top
    assert SUBTITLE in by_text
    footer = by_text[FOOTER].get_window_extent()
    width, height = charts.SIZE_PX
    assert footer.x1 > 0.85 * width and footer.y0 < 0.08 * height  # bottom-right corner
    assert_readable(fig, text_on_bars={f"{p}%" for p in range(101)})


@pytest.mark.parametrize(("name", "build", "data"), CASES, ids=[c[0] for c in CASES])
def test_empty_frames_say_so(name: str, build: Builder, data: Callable[[], pd.DataFrame]) -> None:
    empty = EMPTIES[name]
    assert charts.EMPTY in strings(make(build, empty))
    assert not bars_of(make(build, empty))
    with Image.open(io.BytesIO(render(build, empty))) as decoded:
        assert decoded.size == charts.SIZE_PX
    assert charts.EMPTY in strings(make(build, pd.DataFrame()))


def test_no_figure_is_left_open_or_alive() -> None:
    def alive() -> int:
        gc.collect()
        return sum(isinstance(o, Figure) for o in gc.get_objects())

    before = alive()
    render(charts.bars, options())
    render(charts.systems, by_system().iloc[0:0])
    assert plt.get_fignums() == []
    assert alive() == before


def test_pyplot_is_never_imported() -> None:
    check = "import sys, reports.charts; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True)


@pytest.mark.parametrize(("name", "build", "data"), CASES, ids=[c[0] for c in CASES])
def test_colours_are_okabe_ito(name: str, build: Builder, data: Callable[[], pd.DataFrame]) -> None:
    from matplotlib.colors import to_hex

    colours = {to_hex(r.get_facecolor()).upper() for r in bars_of(make(build, data()))}
    assert colours and colours <= OKABE_ITO


@pytest.mark.parametrize(
    ("name", "frame", "labels"),
    [
        ("bars", pd.DataFrame({"label": [LONG, "Perú"], "n": [3, 1]}), [LONG, "Perú"]),
        (
            "participation",
            pd.DataFrame({"citizens": [1, 0]}, index=[LONG, "Río Hurtado"]),
            [LONG, "Río Hurtado"],
        ),
        (
            "systems",
            pd.DataFrame([[1, 2]], index=[LONG], columns=[LONG, "Año"]),
            [f"{LONG} · total 3", LONG, "Año"],
        ),
        ("feasibility", judged(), [LONG, "Corredor bioceánico con San Juan"]),
    ],
)
def test_long_and_accented_labels_are_wrapped_whole(
    name: str, frame: pd.DataFrame, labels: list[str]
) -> None:
    build = {case: b for case, b, _ in CASES}[name]
    fig = make(build, frame)
    joined = " ".join(" ".join(strings(fig)).split())
    for label in labels:
        assert label in joined
    assert "…" not in joined
    assert_readable(fig, text_on_bars={f"{p}%" for p in range(101)})


def test_text_that_looks_like_mathtext_is_written_as_is() -> None:
    frame = pd.DataFrame({"label": ["Costo $ 1.000", "Entre $x$ y $y$ o_o ^"], "n": [2, 1]})
    assert {"Costo $ 1.000", "Entre $x$ y $y$ o_o ^"} <= set(strings(make(charts.bars, frame)))


def test_counts_are_written_the_chilean_way() -> None:
    assert charts.count_text(0) == "0"
    assert charts.count_text(1234) == "1.234"
    assert charts.count_text(1234567.0) == "1.234.567"
    assert charts.count_text(2.5) == "2,5"


# --- bars ----------------------------------------------------------------------------------


def test_bars_most_first_with_counts_and_new_ones() -> None:
    fig = make(charts.bars, options())
    drawn = strings(fig)
    counts = [s for s in drawn if s[0].isdigit()]
    assert counts == ["1.234 (+30)", "156", "143 (+12)", "121 (+15)", "120", "88 (+4)", "0"]
    assert any("nuevas desde el resumen anterior" in s for s in drawn)
    widths = [r.get_width() for r in bars_of(fig)]
    assert widths == sorted(widths, reverse=True)
    tops = [t.get_window_extent().y0 for t in texts(fig) if t.get_text()[0].isdigit()]
    assert tops == sorted(tops, reverse=True)  # the first is on top
    assert_readable(fig)


def test_bars_without_new_say_nothing_of_it() -> None:
    fig = make(charts.bars, options().drop(columns="new"))
    assert not any("(+" in s or "paréntesis" in s for s in strings(fig))
    fig = make(charts.bars, options(), new=None)
    assert not any("(+" in s for s in strings(fig))


def test_bars_show_at_most_max_bars_and_say_so() -> None:
    frame = pd.DataFrame(
        {"label": [f"Opción número {i}" for i in range(14)], "n": range(14, 0, -1)}
    )
    fig = make(charts.bars, frame)
    assert len(bars_of(fig)) == 10
    assert "Se muestran las 10 con más respuestas, de 14." in strings(fig)
    assert_readable(fig)
    fig = make(charts.bars, frame, max_bars=3)
    assert len(bars_of(fig)) == 3
    assert "Opción número 3" not in strings(fig)


def test_bars_with_many_long_labels_drop_rows_rather_than_overlap() -> None:
    frame = pd.DataFrame({"label": [f"{LONG} {i}" for i in range(10)], "n": range(10, 0, -1)})
    fig = make(
        charts.bars,
        frame,
        title="Un título muy largo que ocupa varias líneas en la pantalla del teléfono, "
        "y que todavía sigue y sigue un poco más",
    )
    shown = len(bars_of(fig))
    assert 3 <= shown < 10
    assert f"Se muestran las {shown} con más respuestas, de 10." in strings(fig)
    assert_readable(fig)


def test_bars_of_zeros_only_are_empty() -> None:
    frame = pd.DataFrame({"label": ["Sí", "No"], "n": [0, 0]})
    assert charts.EMPTY in strings(make(charts.bars, frame))


def test_bars_read_the_named_columns() -> None:
    frame = pd.DataFrame({"opción": ["A", "B"], "votos": [1, 5], "nuevos": [0, 2]})
    drawn = strings(make(charts.bars, frame, label="opción", value="votos", new="nuevos"))
    assert "5 (+2)" in drawn and "1" in drawn


# --- participation -------------------------------------------------------------------------


def test_participation_keeps_the_order_and_shows_zeros() -> None:
    fig = make(charts.participation, comunas())
    drawn = texts(fig)
    names = [t for t in drawn if t.get_text() in {*COMUNAS, "Sin indicar"}]
    assert [t.get_text() for t in names] == [*COMUNAS, "Sin indicar"]
    heights = [t.get_window_extent().y0 for t in names]
    assert heights == sorted(heights, reverse=True)
    counts = [t.get_text() for t in drawn if t.get_text()[0].isdigit()]
    assert counts[:4] == ["88 + 2", "64 + 1", "7 + 1", "0"]  # La Higuera: silent, but shown
    assert counts[9] == "0 + 1"  # Punitaqui: only its municipal contact
    assert {"Ciudadanía", "Contactos municipales"} <= {t.get_text() for t in drawn}
    assert_readable(fig)


def test_participation_with_nobody_yet_still_lists_every_comuna() -> None:
    frame = comunas() * 0
    drawn = strings(make(charts.participation, frame))
    assert drawn.count("0") == len(frame)
    assert "La Serena" in drawn and charts.EMPTY not in drawn


# --- systems -------------------------------------------------------------------------------


def test_systems_one_block_per_question_on_one_scale() -> None:
    fig = make(charts.systems, by_system())
    drawn = strings(fig)
    for i, total in enumerate([41, 60, 32, 79], start=1):
        assert f"Pregunta {i} · total {total}" in drawn
    assert drawn.count("Institucional") == 4
    assert "0" in drawn  # Pregunta 3, Cultural
    limits = {ax.get_xlim() for ax in fig.axes}
    assert len(limits) == 1  # one scale: bar lengths compare across questions
    assert_readable(fig)


@pytest.mark.parametrize("questions", [1, 2, 3, 6])
def test_systems_fit_from_one_to_six_questions(questions: int) -> None:
    frame = pd.DataFrame(
        [[q + s for s in range(6)] for q in range(questions)],
        index=[f"Pregunta {q + 1}" for q in range(questions)],
        columns=SYSTEMS,
    )
    fig = make(charts.systems, frame)
    assert len(fig.axes) == questions
    assert_readable(fig)


# --- feasibility ---------------------------------------------------------------------------


def test_feasibility_rows_by_desirability_with_shares() -> None:
    fig = make(charts.feasibility, judged())
    drawn = strings(fig)
    metas = [s for s in drawn if s.startswith("eligen ")]
    assert metas == [
        "eligen 156 · opinan 140",
        "eligen 143 · opinan 130",
        "eligen 121 · opinan 99",
        "eligen 101 · opinan 90",
        "eligen 44 · opinan 30",
        "eligen 9 · opinan 0",
    ]
    assert {"Sí", "En parte", "No", "¿Es posible?"} <= set(drawn)
    assert "Nadie lo ha evaluado todavía." in drawn  # Cuba: chosen, never judged
    assert "61%" in drawn and "14%" in drawn  # energías: 61 % sí, 25 % en parte, 14 % no
    percents = [int(s[:-1]) for s in drawn if s.endswith("%")]
    thirds = percents[6:9]  # Hérault: a third each, whole percentages that still add up
    assert sorted(thirds) == [33, 33, 34]
    assert_readable(fig, text_on_bars={f"{p}%" for p in range(101)})


def test_feasibility_shows_at_most_eight_and_says_so() -> None:
    frame = pd.concat([judged()] * 2, ignore_index=True)
    fig = make(charts.feasibility, frame)
    assert "Los 8 más elegidos como deseables, de 12." in strings(fig)
    assert_readable(fig, text_on_bars={f"{p}%" for p in range(101)})


def test_feasibility_with_nothing_chosen_or_judged_is_empty() -> None:
    frame = judged().assign(chosen=0, judged=0)
    assert charts.EMPTY in strings(make(charts.feasibility, frame))
