"""The digest's charts: PNG images made to be read on a phone, in Spanish (Chile).

Organisers get the digest as a Telegram album, so every chart is a portrait image of
1080 × 1350 px (4:5, which Telegram shows uncropped) with large type (no text under 15 pt
at 150 dpi), a bold title that says what the chart shows, a subtitle with the period, the
consultation's name and date in the bottom-right corner, and Okabe–Ito colours, which stay
distinct for colour-blind readers.

Every bar carries its exact count, so there is no value axis to decode (no ticks, grid or
frame: the numbers are the axis). Labels are wrapped by their measured width, never cut, and
laid out so that nothing overlaps: long option names (up to ~60 characters) get a line of
their own above their bar, with the whole width of the screen.

The functions are pure: plain, already-labelled pandas frames in, a
:class:`~matplotlib.figure.Figure` out, which :func:`png` turns into bytes. Each figure has
its own Agg canvas and none touches pyplot or ``rcParams``, so they are safe in worker threads
and leave no figure behind. The same input gives the same bytes: the PNG carries no
timestamp or version.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypedDict, Unpack

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from reports.texts import text

__all__ = [
    "EMPTY",
    "MIN_PT",
    "SIZE_PX",
    "bars",
    "count_text",
    "feasibility",
    "participation",
    "png",
    "systems",
]

WIDTH_IN = 7.2
HEIGHT_IN = 9.0
DPI = 150
SIZE_PX = (round(WIDTH_IN * DPI), round(HEIGHT_IN * DPI))
"""(width, height) of every chart, in pixels."""

FONT = "DejaVu Sans"  # bundled with matplotlib; has every Spanish letter (á é í ó ú ü ñ ¿ ¡)
BASE_PT = 15.0
TITLE_PT = 21.0
EMPTY_PT = 22.0
MIN_PT = BASE_PT
"""No text of a chart is smaller than this."""
LINESPACING = 1.2

INK = "#1a1a1a"
MUTED = "#4d4d4d"

# Okabe & Ito (2008), "Color Universal Design": distinct for every kind of colour vision.
BLUE = "#0072B2"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
VERMILLION = "#D55E00"

EMPTY = text("chart_empty")
UNKNOWN_PLACE = text("not_given")

MARGIN = 0.4  # inches, left and right
TOP = 0.35  # inches above the title
CONTENT_W = WIDTH_IN - 2 * MARGIN
LABEL_GAP = 0.06  # inches between a label and the bar below it
MAX_BAR = 0.38  # thickest bar, inches
MAX_GAP = 0.3  # widest gap after a bar, inches
MIN_SHARE = 0.28  # least height of a bar and the gap after it, inches
PAD_PT = 6  # between the end of a bar and its count
LABEL_PAD_PT = 8  # between a label on the left and the bars
LABEL_PAD = LABEL_PAD_PT / 72 + 0.04  # the same in inches, and some room to spare
NOTE_GAP = 0.1  # inches after a line of the header


# --- page: header, footer, measured text ---------------------------------------------------


@cache
def _font(size: float = BASE_PT, weight: str = "normal") -> FontProperties:
    return FontProperties(family=FONT, size=size, weight=weight)


class _Look(TypedDict, total=False):
    """How a text is drawn, beside its place and size: the words of the page's texts and the
    chart's alike (``_Page.text``, ``_write``), with the same defaults (``_drawn``)."""

    weight: str
    color: str
    ha: str


def _drawn(look: _Look, size: float = BASE_PT) -> dict[str, Any]:
    """Matplotlib's words for ``look``: by default normal weight, in ink, from the left; never
    read as math (a label may hold a ``$``)."""
    return {
        "fontproperties": _font(size, look.get("weight", "normal")),
        "color": look.get("color", INK),
        "ha": look.get("ha", "left"),
        "parse_math": False,
    }


class _Page:
    """A chart being laid out from the top down, in inches.

    ``cursor`` is how much of the height, from the top edge, the header already uses; the
    footer takes ``floor`` inches at the bottom; what is in between is for the chart.
    """

    def __init__(self, title: str, subtitle: str, footer: str) -> None:
        self.fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        self.renderer = self.canvas.get_renderer()
        descent = self._extent("lp")[2]
        self.descent = descent
        """Below the baseline, in inches, of a line of base text."""
        self.cap = self._extent("H")[1]
        """Height of a capital letter or a digit of base text, in inches."""
        self.first = self.lines_height(1) - descent
        """From the top of a line of base text (accents included) to its baseline, inches."""
        self.step = self.lines_height(2) - self.lines_height(1)
        """From one baseline to the next in a paragraph of base text, in inches."""
        self.cursor = TOP
        self.floor = self._footer(footer)
        self.block(title, size=TITLE_PT, weight="bold", color=INK, max_lines=3, gap=0.14)
        self.block(subtitle, max_lines=2, gap=0.22)

    # measuring and wrapping

    def _extent(
        self, text: str, size: float = BASE_PT, weight: str = "normal"
    ) -> tuple[float, float, float]:
        w, h, d = self.renderer.get_text_width_height_descent(
            text, _font(size, weight), ismath=False
        )
        return float(w) / DPI, float(h) / DPI, float(d) / DPI

    def width(self, text: str, size: float = BASE_PT, weight: str = "normal") -> float:
        """Width in inches of one line of ``text``."""
        return self._extent(text, size, weight)[0]

    def wrap(
        self,
        text: object,
        width: float,
        *,
        size: float = BASE_PT,
        weight: str = "normal",
        max_lines: int = 3,
    ) -> list[str]:
        """``text`` in as few lines as fit ``width`` inches, broken between words; only a
        text longer than ``max_lines`` lines loses its end, marked with an ellipsis."""
        words = " ".join(str(text).split())
        if not words:
            return [""]
        full = self.width(words, size, weight)
        if full <= width:
            return [words]
        lines = [words]
        estimate = int(len(words) * width / full) + 2
        for limit in range(min(estimate, len(words) - 1), 0, -1):
            lines = textwrap.wrap(words, limit, break_on_hyphens=False)
            if all(self.width(line, size, weight) <= width for line in lines):
                break
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            last = lines[-1]
            while last and self.width(last + "…", size, weight) > width:
                last = last[:-1].rstrip()
            lines[-1] = last + "…"
        return lines

    def height(self, artist: Text) -> float:
        """Height in inches of a text as drawn."""
        return float(artist.get_window_extent(self.renderer).height) / DPI

    def lines_height(self, lines: int, size: float = BASE_PT) -> float:
        """Height in inches of ``lines`` lines of text, accents and descenders included."""
        probe = Text(0, 0, "\n".join(["Ágy"] * lines), fontproperties=_font(size))
        probe.set_linespacing(LINESPACING)
        probe.set_figure(self.fig)
        return self.height(probe)

    # drawing in figure inches

    def text(
        self,
        x: float,
        y_from_top: float,
        text: str,
        *,
        size: float = BASE_PT,
        va: str = "top",
        **look: Unpack[_Look],
    ) -> Text:
        return self.fig.text(
            x,
            HEIGHT_IN - y_from_top,
            text,
            transform=self.fig.dpi_scale_trans,
            va=va,
            linespacing=LINESPACING,
            **_drawn(look, size),
        )

    def block(
        self,
        text: str,
        *,
        size: float = BASE_PT,
        weight: str = "normal",
        color: str = MUTED,
        max_lines: int = 2,
        gap: float = NOTE_GAP,
    ) -> None:
        """A paragraph across the page, below what is already there."""
        lines = self.wrap(text, CONTENT_W, size=size, weight=weight, max_lines=max_lines)
        artist = self.text(
            MARGIN, self.cursor, "\n".join(lines), size=size, weight=weight, color=color
        )
        self.cursor += self.height(artist) + gap

    def legend(self, items: Sequence[tuple[str, str]], *, title: str = "") -> None:
        """Coloured squares and their names in a row (two rows if they do not fit), all on
        one baseline so that accents do not make a name jump."""
        box = 0.2
        row_h = self.lines_height(1) + 0.08
        x, row = MARGIN, 0
        baseline = self.cursor + self.first
        if title:
            self.text(x, baseline, title, weight="bold", va="baseline")
            x += self.width(title, weight="bold") + 0.18
        for color, name in items:
            need = box + 0.09 + self.width(name)
            if x + need > WIDTH_IN - MARGIN and x > MARGIN:
                x, row = MARGIN, row + 1
            y = baseline + row * row_h
            self.fig.add_artist(
                Rectangle(
                    (x, HEIGHT_IN - y + self.cap / 2 - box / 2),
                    box,
                    box,
                    transform=self.fig.dpi_scale_trans,
                    facecolor=color,
                    edgecolor="none",
                )
            )
            self.text(x + box + 0.09, y, name, va="baseline")
            x += need + 0.32
        self.cursor += (row + 1) * row_h + 0.1

    def _footer(self, footer: str) -> float:
        lines = self.wrap(footer, CONTENT_W, max_lines=2)
        artist = self.text(
            WIDTH_IN - MARGIN,
            HEIGHT_IN - 0.22,
            "\n".join(lines),
            color=MUTED,
            ha="right",
            va="bottom",
        )
        return 0.22 + self.height(artist) + 0.25

    @property
    def available(self) -> float:
        """Height in inches left for the chart, between the header and the footer."""
        return HEIGHT_IN - self.cursor - self.floor

    def axes(self, left: float, top: float, width: float, height: float) -> Axes:
        """Axes ``left`` and ``top`` inches from the left and top edges, whose y data are
        inches down from their own top edge; no frame, ticks or grid."""
        ax = self.fig.add_axes(
            (
                left / WIDTH_IN,
                (HEIGHT_IN - top - height) / HEIGHT_IN,
                width / WIDTH_IN,
                height / HEIGHT_IN,
            )
        )
        ax.set_ylim(height, 0)
        ax.set_axis_off()
        return ax

    def empty(self, message: str = EMPTY) -> None:
        """The chart area says that there is nothing to show yet."""
        self.fig.text(
            WIDTH_IN / 2,
            self.floor + self.available / 2,
            message,
            transform=self.fig.dpi_scale_trans,
            ha="center",
            va="center",
            color=MUTED,
            fontproperties=_font(EMPTY_PT),
            parse_math=False,
        )


# --- shared pieces -------------------------------------------------------------------------


def png(fig: Figure) -> bytes:
    """A figure as PNG bytes without timestamp or version (same figure, same bytes)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def count_text(n: float) -> str:
    """A count as it is written in Chile: 1.234 (and 2,5 if it is not whole)."""
    if float(n).is_integer():
        return f"{int(n):,}".replace(",", ".")
    return f"{n:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _numbers(frame: pd.DataFrame, column: str | None) -> pd.Series:
    """A column as non-negative floats (missing column or values: 0)."""
    if column is None or column not in frame:
        return pd.Series(0.0, index=frame.index)
    values = pd.to_numeric(frame[column], errors="coerce").fillna(0.0).astype(float)
    return values.clip(lower=0.0)


def _text_color(background: str) -> str:
    """Black or white, whichever contrasts more with ``background`` (WCAG luminance)."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in to_rgb(background))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"


def _percentages(shares: Sequence[float]) -> list[int]:
    """Whole percentages that add up to 100 (largest remainders), for positive shares."""
    total = sum(shares)
    if total <= 0:
        return [0] * len(shares)
    exact = [100 * s / total for s in shares]
    whole = [math.floor(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: exact[i] - whole[i], reverse=True)
    for i in order[: 100 - sum(whole)]:
        whole[i] += 1
    return whole


@dataclass(frozen=True)
class _Slot:
    """Where a bar with its label above goes, in inches down from the chart's top."""

    baseline: float
    """Baseline of the label's first line."""
    bar_center: float
    bar_height: float


def _fit(page: _Page, line_counts: Sequence[int], available: float) -> int:
    """How many bars with labels of ``line_counts`` lines above them fit (at least one)."""
    used = 0.0
    for i, lines in enumerate(line_counts):
        used += page.lines_height(lines) + LABEL_GAP + MIN_SHARE
        if used > available + 1e-9:
            return max(i, 1)
    return len(line_counts)


def _slots(page: _Page, line_counts: Sequence[int], available: float) -> list[_Slot]:
    """Labels above bars, from the top, the bars as thick as the space allows."""
    if not line_counts:
        return []
    heights = [page.lines_height(n) for n in line_counts]
    share = max((available - sum(heights) - LABEL_GAP * len(heights)) / len(heights), MIN_SHARE)
    bar = min(MAX_BAR, 0.62 * share)
    gap = min(share - bar, MAX_GAP)
    slots, y = [], 0.0
    for h in heights:
        slots.append(_Slot(y + page.first, y + h + LABEL_GAP + bar / 2, bar))
        y += h + LABEL_GAP + bar + gap
    return slots


def _value_limit(page: _Page, width: float, top: float, notes: Sequence[str]) -> float:
    """The x limit that leaves room after the longest bar for the widest count."""
    widest = max((page.width(n, weight="bold") for n in notes), default=0.0) + PAD_PT / 72
    usable = max(width - widest - 0.05, width * 0.3)
    return max(top, 1.0) * width / usable


def _write(
    ax: Axes,
    x: float,
    baseline: float,
    text: str,
    *,
    axes_x: bool = False,
    offset_pt: float = 0.0,
    **look: Unpack[_Look],
) -> None:
    """One line of base text on ``baseline`` (chart inches); ``x`` in data units, or in axes
    fractions if ``axes_x``, moved ``offset_pt`` points sideways."""
    ax.annotate(
        text,
        xy=(x, baseline),
        xycoords=ax.get_yaxis_transform() if axes_x else "data",
        xytext=(offset_pt, 0),
        textcoords="offset points",
        va="baseline",
        annotation_clip=False,
        **_drawn(look),
    )


def _count(page: _Page, ax: Axes, x: float, center: float, text: str) -> None:
    """A count just after the end of a bar, centred on it."""
    _write(ax, x, center + page.cap / 2, text, weight="bold", offset_pt=PAD_PT)


def _label_left(page: _Page, ax: Axes, center: float, lines: Sequence[str]) -> None:
    """A label right-aligned before the axes, its lines centred on ``center``."""
    first = center + page.cap / 2 - (len(lines) - 1) * page.step / 2
    for k, line in enumerate(lines):
        _write(ax, 0, first + k * page.step, line, axes_x=True, ha="right", offset_pt=-LABEL_PAD_PT)


def _left_labels(
    page: _Page, names: Sequence[str], room: float, share: float
) -> tuple[list[list[str]], float]:
    """Labels for the left of bars ``share`` inches apart, and the width they take: as many
    lines as a row holds, and a column as narrow as they allow, up to 42 % of ``room``;
    wider (up to 60 %) rather than cut a name."""
    most = max(1, min(3, 1 + int((share - page.lines_height(1)) / page.step)))
    natural = max(page.width(n) for n in names)
    wrapped: list[list[str]] = []
    for fraction in (0.42, 0.5, 0.6):
        width = min(natural, room * fraction)
        wrapped = [page.wrap(n, width, max_lines=most) for n in names]
        if all(" ".join(w) == " ".join(n.split()) for w, n in zip(wrapped, names, strict=True)):
            break
    return wrapped, max(page.width(line) for lines in wrapped for line in lines)


def _label_above(page: _Page, ax: Axes, slot: _Slot, lines: Sequence[str]) -> None:
    for k, line in enumerate(lines):
        _write(ax, 0, slot.baseline + k * page.step, line, axes_x=True)


# --- the charts ----------------------------------------------------------------------------


def bars(
    frame: pd.DataFrame,
    *,
    title: str,
    subtitle: str,
    footer: str,
    value: str = "n",
    label: str = "label",
    new: str | None = "new",
    max_bars: int = 10,
) -> Figure:
    """Horizontal bars, the most frequent first, at most ``max_bars`` (a line says how many
    of how many are shown when some are left out, also when long labels leave no room).
    Each label sits on its own line above its bar, so long option names keep the whole
    width; each bar ends with its count and, where the ``new`` column says so, how many of
    them arrived since the last digest: "48 (+5)". An empty frame (or only zeros) gives a
    chart that says "Sin respuestas todavía"."""
    page = _Page(title, subtitle, footer)
    if frame.empty or label not in frame or _numbers(frame, value).sum() <= 0:
        page.empty()
        return page.fig
    data = pd.DataFrame(
        {
            "label": frame[label].astype(str).to_numpy(),
            "value": _numbers(frame, value).to_numpy(),
            "new": _numbers(frame, new).to_numpy(),
        }
    ).sort_values("value", ascending=False, kind="stable")
    if (data["new"] > 0).any():
        page.block(text("bars_new"))
    candidates = data.head(max(max_bars, 1))
    wrapped = [page.wrap(name, CONTENT_W) for name in candidates["label"]]
    counts = [len(lines) for lines in wrapped]
    shown = _fit(page, counts, page.available)
    if shown < len(data):
        shown = _fit(page, counts, page.available - page.lines_height(1) - NOTE_GAP)
        page.block(text("bars_shown", shown=shown, total=len(data)))
    rows = candidates.head(shown)
    ax = page.axes(MARGIN, page.cursor, CONTENT_W, page.available)
    notes = [
        count_text(v) + (f" (+{count_text(k)})" if k > 0 else "")
        for v, k in zip(rows["value"], rows["new"], strict=True)
    ]
    ax.set_xlim(0, _value_limit(page, CONTENT_W, float(rows["value"].max()), notes))
    slots = _slots(page, counts[:shown], page.available)
    for slot, lines, v, note in zip(slots, wrapped, rows["value"], notes, strict=False):
        _label_above(page, ax, slot, lines)
        ax.barh(slot.bar_center, v, height=slot.bar_height, color=BLUE, linewidth=0)
        _count(page, ax, v, slot.bar_center, note)
    return page.fig


def participation(frame: pd.DataFrame, *, title: str, subtitle: str, footer: str) -> Figure:
    """Participants per place in the frame's order (the provinces' order: keep it, a reader
    looks for their comuna where it always is). Index: the places' names (an empty one is
    shown as "Sin indicar"); columns ``citizens`` and ``municipal``, stacked as "Ciudadanía"
    and "Contactos municipales". Every row shows its count, "0" included, so that a silent
    comuna stands out; a row with municipal contacts reads "12 + 3"."""
    page = _Page(title, subtitle, footer)
    if frame.empty:
        page.empty()
        return page.fig
    citizens = _numbers(frame, "citizens").to_numpy()
    municipal = _numbers(frame, "municipal").to_numpy()
    totals = citizens + municipal
    names = [str(i).strip() or UNKNOWN_PLACE for i in frame.index]
    page.legend([(BLUE, text("participation_citizens")), (ORANGE, text("participation_municipal"))])
    if municipal.sum() > 0:
        page.block(text("participation_figures"))
    height = page.available
    share = min(height / len(names), MAX_BAR + MAX_GAP)
    wrapped, label_w = _left_labels(page, names, CONTENT_W, share)
    left = MARGIN + label_w + LABEL_PAD
    width = WIDTH_IN - MARGIN - left
    ax = page.axes(left, page.cursor, width, height)
    notes = [
        count_text(c) + (f" + {count_text(m)}" if m > 0 else "")
        for c, m in zip(citizens, municipal, strict=True)
    ]
    ax.set_xlim(0, _value_limit(page, width, float(totals.max()), notes))
    bar = min(MAX_BAR, 0.62 * share)
    for i, lines in enumerate(wrapped):
        y = share * (i + 0.5)
        ax.barh(y, citizens[i], height=bar, color=BLUE, linewidth=0)
        ax.barh(y, municipal[i], left=citizens[i], height=bar, color=ORANGE, linewidth=0)
        _count(page, ax, totals[i], y, notes[i])
        _label_left(page, ax, y, lines)
    ax.vlines(0, 0, share * len(names), color=INK, linewidth=1.0)
    return page.fig


def systems(frame: pd.DataFrame, *, title: str, subtitle: str, footer: str) -> Figure:
    """The six systems of the regional strategy in the free-text changes: one block of bars
    per question (rows of the frame: questions; columns: the systems, in the order to show),
    two blocks side by side when there are more than two questions. All blocks share one
    scale, so bar lengths compare across questions, and every bar, zeros included, shows its
    count. An empty frame (or only zeros): "Sin respuestas todavía"."""
    page = _Page(title, subtitle, footer)
    numbers = frame.apply(pd.to_numeric, errors="coerce").fillna(0.0).clip(lower=0.0)
    if numbers.empty or float(numbers.to_numpy().sum()) <= 0:
        page.empty()
        return page.fig
    questions = [str(q) for q in numbers.index]
    systems = [str(s) for s in numbers.columns]
    columns = 1 if len(questions) <= 2 else 2
    rows = math.ceil(len(questions) / columns)
    column_gap, row_gap = 0.4, 0.28
    col_w = (CONTENT_W - (columns - 1) * column_gap) / columns
    block_h = (page.available - (rows - 1) * row_gap) / rows
    values = numbers.to_numpy()
    headings = [
        page.wrap(
            text("systems_heading", question=q, total=count_text(v.sum())),
            col_w,
            weight="bold",
            max_lines=2,
        )
        for q, v in zip(questions, values, strict=True)
    ]
    head_h = page.lines_height(max(len(lines) for lines in headings)) + 0.12
    share = min((block_h - head_h) / len(systems), MAX_BAR + MAX_GAP)
    wrapped, label_w = _left_labels(page, systems, col_w, share)
    bar_w = col_w - label_w - LABEL_PAD
    limit = _value_limit(page, bar_w, float(values.max()), [count_text(v) for v in values.ravel()])
    bar = min(MAX_BAR, 0.62 * share)
    for k, (heading, counts) in enumerate(zip(headings, values, strict=True)):
        x0 = MARGIN + (k % columns) * (col_w + column_gap)
        y0 = page.cursor + (k // columns) * (block_h + row_gap)
        page.text(x0, y0, "\n".join(heading), weight="bold")
        ax = page.axes(x0 + col_w - bar_w, y0 + head_h, bar_w, block_h - head_h)
        ax.set_xlim(0, limit)
        for i, (label_lines, v) in enumerate(zip(wrapped, counts, strict=True)):
            y = share * (i + 0.5)
            ax.barh(y, v, height=bar, color=BLUE, linewidth=0)
            _count(page, ax, v, y, count_text(v))
            _label_left(page, ax, y, label_lines)
        ax.vlines(0, 0, share * len(systems), color=INK, linewidth=1.0)
    return page.fig


DEFAULT_SCALE = (text("verdict_yes"), text("verdict_partly"), text("verdict_no"))


def _verdicts(scale: Sequence[str]) -> list[tuple[str, str, str]]:
    """(column, colour, name) of each part of a bar: two parts for a two-word scale."""
    if len(scale) == 2:
        return [("yes", BLUE, scale[0]), ("no", VERMILLION, scale[1])]
    return [("yes", BLUE, scale[0]), ("partly", SKY_BLUE, scale[1]), ("no", VERMILLION, scale[2])]


def feasibility(
    frame: pd.DataFrame,
    *,
    title: str,
    subtitle: str,
    footer: str,
    max_rows: int = 8,
    scale: Sequence[str] = DEFAULT_SCALE,
) -> Figure:
    """Desirability against feasibility: one row per change, the most chosen first (at most
    ``max_rows``, and a line says how many of how many when some are left out), each a
    bar split into the shares of "Sí", "En parte" and "No" to "¿es posible?", with the
    percentages written in, and "eligen N · opinan M" beside its name.

    Why not a scatter (how many chose it × how feasible it is judged)? On a phone its point
    labels collide as soon as a dozen changes with long names are on it, and the reader has
    to decode position, size and a made-up "factibilidad" score. Rows in order of
    desirability answer the same question (are the wanted changes thought possible?) with
    plain words and exact numbers, and the three-part bar keeps "en parte" visible instead of
    folding it into a score.

    Columns: ``label``; ``chosen`` (how many chose it as desirable); ``possible`` and
    ``partial`` (shares 0..1 judging it "sí" and "en parte"; the rest is "no"); ``judged``
    (how many judged it). ``scale``: the names of the parts, from the consultation's
    verdicts (two names: two parts, "possible" and "not possible"). Empty: "Sin respuestas
    todavía"."""
    verdicts = _verdicts(scale)
    page = _Page(title, subtitle, footer)
    if frame.empty or "label" not in frame:
        page.empty()
        return page.fig
    possible = _numbers(frame, "possible").clip(upper=1.0)
    partial = _numbers(frame, "partial").clip(upper=1.0)
    data = pd.DataFrame(
        {
            "label": frame["label"].astype(str).to_numpy(),
            "chosen": _numbers(frame, "chosen").to_numpy(),
            "judged": _numbers(frame, "judged").to_numpy(),
            "yes": possible.to_numpy(),
            "partly": partial.to_numpy(),
            "no": (1.0 - possible - partial).clip(lower=0.0).to_numpy(),
        }
    )
    if data["chosen"].sum() <= 0 and data["judged"].sum() <= 0:
        page.empty()
        return page.fig
    data = data.sort_values(["chosen", "judged"], ascending=False, kind="stable")
    page.legend([(color, name) for _, color, name in verdicts], title=text("feasibility_legend"))
    candidates = data.head(max(max_rows, 1))
    metas = [
        text("feasibility_counts", chosen=count_text(c), judged=count_text(j))
        for c, j in zip(candidates["chosen"], candidates["judged"], strict=True)
    ]
    wrapped = [
        page.wrap(name, CONTENT_W - page.width(meta) - 0.25)
        for name, meta in zip(candidates["label"], metas, strict=True)
    ]
    counts = [len(lines) for lines in wrapped]
    note = text("feasibility_order")
    shown = _fit(page, counts, page.available - page.lines_height(1) - NOTE_GAP)
    if shown < len(data):
        note = text("feasibility_shown", shown=shown, total=len(data))
    page.block(note)
    ax = page.axes(MARGIN, page.cursor, CONTENT_W, page.available)
    ax.set_xlim(0, 1)
    rows = candidates.head(shown)
    slots = _slots(page, counts[:shown], page.available)
    for slot, lines, meta, (_, row) in zip(slots, wrapped, metas, rows.iterrows(), strict=False):
        _label_above(page, ax, slot, lines)
        _write(ax, 1.0, slot.baseline, meta, axes_x=True, color=MUTED, ha="right")
        baseline = slot.bar_center + page.cap / 2
        if row["judged"] <= 0:
            _write(ax, 0.0, baseline, text("feasibility_unjudged"), color=MUTED)
            continue
        shares = [float(row[key]) for key, _, _ in verdicts]
        total = sum(shares)
        left = 0.0
        for (_, color, _), share, percent in zip(
            verdicts, shares, _percentages(shares), strict=True
        ):
            w = share / total
            if w <= 0:
                continue
            ax.barh(slot.bar_center, w, left=left, height=slot.bar_height, color=color, linewidth=0)
            written = f"{percent}%"
            if page.width(written, weight="bold") + 0.12 <= w * CONTENT_W:
                _write(
                    ax,
                    left + w / 2,
                    baseline,
                    written,
                    weight="bold",
                    color=_text_color(color),
                    ha="center",
                )
            left += w
    return page.fig
