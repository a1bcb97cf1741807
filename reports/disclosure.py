"""Disclosure control: the one place every published count of people goes through.

Method: **rounding to base 5**, as statistical offices publish counts of people (Statistics
Canada and the UK's benefit statistics round every count to a multiple of 5), plus a
threshold for what participants see.

* Every count of people that leaves ``reports/`` (charts, digest text, result table, XLSX
  sheets, /avance, /resultados, the final summary) is ``people(n)``: 0 stays 0, 1 to 7
  become 5, any other count the nearest multiple of 5 (halves up). Every published figure
  is then a multiple of 5, so any sum or difference of published figures is a multiple of
  5 too: subtracting a total's published parts from it can never give 1 to 4, however the
  figures are combined ("La Serena 58, the other ages 55, so 3 under 18" is gone).
* Why not small-cell suppression ("<5")? Alone it is undone by subtraction (the issue's
  La Serena example), and protecting it needs complementary suppression over every pair of
  tables, which breaks whenever a new figure is published. Why not cell-key perturbation
  (ONS 2021)? It needs a record key stored with each participant and a perturbation table;
  rounding gives the same guarantee against differencing with nothing stored, and readers
  know rounded figures.
* Shares (agreement, "posible") are computed from rounded counts only (the part and the
  rest, each rounded), and only where at least ``MIN_PEOPLE`` people answered: a share of
  exact counts beside a rounded total would give the exact counts back. Participants
  never see a change, theme or share resting on fewer than ``MIN_PEOPLE`` people.

Published figures may not add up exactly (each is rounded on its own); the texts say
"cifras redondeadas a múltiplos de 5" (``NOTE``).

Limit (as for any deterministic rounding): an analyst who reasons with the interval behind
each figure, rather than subtracting figures, can in rare extreme tables bound a cell to
exactly 1 (a total at the top of its interval whose other parts are all at the bottom of
theirs). Random rounding or cell-key perturbation would close that at the cost of figures
that change between digests; tests/reports/test_disclosure.py attacks by subtraction.
"""

from __future__ import annotations

from reports.texts import text

BASE = 5
"""Every published count of people is a multiple of this."""
MIN_PEOPLE = 5
"""Nothing participants see rests on fewer people than this; no share is computed from
fewer, and no comuna is broken down by age or gender with fewer."""
NOTE = text("rounded", base=BASE)
"""What readers are told about the figures."""


def people(n: int | float) -> int:
    """A count of people as it may be published: 0 → 0, 1..7 → 5, else the nearest
    multiple of ``BASE`` (halves up)."""
    n = int(n)
    if n <= 0:
        return 0
    return max(BASE, (n + BASE // 2) // BASE * BASE)


def enough(n: int | float) -> bool:
    """Whether a figure resting on ``n`` people may be shown to participants."""
    return int(n) >= MIN_PEOPLE


def share(part: int | float, whole: int | float) -> float | None:
    """The share of ``part`` among ``whole`` people, from rounded figures only: ``part`` and
    the rest (``whole - part``) are rounded, the share is the first over their sum. None
    when fewer than ``MIN_PEOPLE`` people answered (no share is published then)."""
    if not enough(whole):
        return None
    yes, rest = people(part), people(int(whole) - int(part))
    return yes / (yes + rest)


def percent(part: int | float, whole: int | float) -> str:
    """``share`` as "40%", or "—" when it may not be published."""
    value = share(part, whole)
    return "—" if value is None else f"{round(100 * value)}%"
