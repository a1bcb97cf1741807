"""The reports' texts live in one catalogue, ``reports/texts_es.yaml``: every key the code
looks up is in it, every key in it is looked up, and each look-up fills exactly the
placeholders of its text.

The look-ups are found by reading the source: every call ``text("key", name=...)`` in a
module of ours that imports ``text`` from ``reports.texts``. A key must be written as a
string literal and the values as keywords, so that this test can check them."""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from flows import catalogue
from reports.texts import text

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "flows", "storage", "reports")
MODULE = "reports.texts"


@dataclass(frozen=True)
class Call:
    where: str
    key: str
    names: frozenset[str]


def _imports_text(tree: ast.Module, where: str) -> bool:
    """Whether the module imports ``text`` from the catalogue's module (under that name:
    another way of reaching it would hide its look-ups from this test)."""
    found = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == MODULE:
            names = [(a.name, a.asname) for a in node.names]
            assert names == [("text", None)], f"{where}: import only `text` from {MODULE}"
            found = True
        elif isinstance(node, ast.ImportFrom) and node.module == "reports":
            assert "texts" not in {a.name for a in node.names}, f"{where}: import `text` itself"
        elif isinstance(node, ast.Import):
            assert MODULE not in {a.name for a in node.names}, f"{where}: import `text` itself"
    return found


def _calls() -> list[Call]:
    calls = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            tree = ast.parse(path.read_text(encoding="utf-8"), where)
            if not _imports_text(tree, where):
                continue
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "text"
                ):
                    continue
                at = f"{where}:{node.lineno}"
                key = node.args[0] if len(node.args) == 1 else None
                assert isinstance(key, ast.Constant) and isinstance(key.value, str), (
                    f"{at}: the key must be one string literal"
                )
                names = [k.arg for k in node.keywords]
                assert None not in names, f"{at}: values by name, not **values"
                calls.append(Call(at, key.value, frozenset(str(n) for n in names)))
    return calls


CALLS = _calls()
CATALOGUE: dict[str, object] = catalogue.load("reports", "texts_es.yaml")


def _placeholders(value: str) -> dict[str, str]:
    """Each placeholder's name and its format (``until:%d-%m-%Y`` → until: %d-%m-%Y)."""
    found = {}
    for _, field, spec, _ in string.Formatter().parse(value):
        if field is not None:
            name = re.split(r"[.\[]", field)[0]
            assert name and not name.isdigit(), f"{value!r}: placeholders have names"
            found[name] = spec or ""
    return found


def test_the_source_is_read() -> None:
    """Calls from the digest, the charts, the export and the bot's reporting are found."""
    files = {c.where.split(":")[0] for c in CALLS}
    assert files >= {"reports/charts.py", "reports/digest.py", "reports/disclosure.py",
                     "reports/export.py", "bot/services/reporting.py"}  # fmt: skip


def test_the_catalogue_holds_only_texts() -> None:
    """YAML reads a bare No as false: every value must come out as a string."""
    assert CATALOGUE
    wrong = {k: v for k, v in CATALOGUE.items() if not isinstance(v, str) or not v}
    assert not wrong


def test_every_key_looked_up_is_in_the_catalogue() -> None:
    missing = [f"{c.where}: {c.key}" for c in CALLS if c.key not in CATALOGUE]
    assert not missing


def test_every_key_in_the_catalogue_is_looked_up() -> None:
    unused = sorted(set(CATALOGUE) - {c.key for c in CALLS})
    assert not unused


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.where}:{c.key}")
def test_each_look_up_fills_exactly_the_placeholders_of_its_text(call: Call) -> None:
    value = CATALOGUE.get(call.key)
    assert isinstance(value, str)
    assert set(_placeholders(value)) == call.names
    if not call.names:  # returned as written: no {{ }} to unescape
        assert "{" not in value and "}" not in value


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.where}:{c.key}")
def test_each_text_formats_with_its_callers_values(call: Call) -> None:
    """A date where the text gives a date format, a word elsewhere."""
    value = CATALOGUE.get(call.key)
    assert isinstance(value, str)
    specs = _placeholders(value)
    values: dict[str, object] = {
        name: datetime(2026, 11, 25, 9, 30) if "%" in specs.get(name, "") else "x"
        for name in call.names
    }
    assert text(call.key, **values)  # a placeholder without a value raises KeyError
