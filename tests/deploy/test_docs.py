"""The README and docs/ against the tree: the links lead somewhere, the commands they list
exist, and the README stays short enough to read in five minutes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deploy.test_deploy_files import consulta_app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_lead_to_files_of_the_tree(doc: Path) -> None:
    targets = LINK.findall(doc.read_text(encoding="utf-8"))
    local = [t for t in targets if not re.match(r"^[a-z]+:", t)]
    missing = [t for t in local if not (doc.parent / t).exists()]
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_paths_of_the_tree_named_in_code_exist(doc: Path) -> None:
    """`bot/adapter/polling.py` and the like: files move, and the docs must follow."""
    named = re.findall(
        r"`((?:bot|flows|storage|reports|tests|deploy|bench|docs)/[\w./@-]*)`",
        doc.read_text(encoding="utf-8"),
    )
    assert [path for path in named if not (ROOT / path).exists()] == []


def test_readme_commands_exist() -> None:
    """Every row of the README's table of `consulta` commands, as ``--help`` of its words."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `consulta ([^`]+)` \|", readme, re.MULTILINE)
    assert len(rows) >= 10
    runner = CliRunner()
    for row in rows:
        words = re.split(r"\s+", row.replace("\\|", "|"))
        command = []
        for word in words:  # the subcommand's words: up to the first option or placeholder
            if word.startswith(("[", "-")) or not word.islower() or "|" in word:
                break
            command.append(word)
        options = re.findall(r"(--[a-z-]+)", row)
        result = runner.invoke(consulta_app(), [*command, "--help"])
        assert result.exit_code == 0, f"consulta {row}: {result.output}"
        for option in options:
            assert option in result.output, f"consulta {row}: no {option}"


def test_the_two_commands_of_the_readme_are_make_targets() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test", "bench", "lock"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)
