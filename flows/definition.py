"""Reading a consultation file: YAML → validated ``Definition`` with its version.

The version is a digest of the file's text: any edit (a typo fixed, an option added) makes a
new version, and every answer records the version it answered.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from flows import catalogue
from flows.errors import DefinitionError, Problem
from flows.schema import Consultation, reference_problems

BUNDLED = "coquimbo2020.yaml"
MAX_TEXT = 1000
"""Longest free text accepted from a participant, in characters."""


class Messages(BaseModel):
    """The interface texts (``flows/messages_es.yaml``); every key is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    welcome_back: str
    consent_yes: str
    consent_no: str
    consent_hint: str
    consent_required: str
    declined: str
    declined_again: str
    consent_thanks_municipal: str
    invited_welcome: str
    invitation_upgraded: str
    invitation_used: str
    invitation_expired: str
    invitation_revoked: str
    invitation_unknown: str
    invitation_throttled: str
    reminder: str
    btn_stop_reminders: str
    reminders_stopped: str
    no_reminders: str
    consent_thanks: str
    ask_province: str
    ask_comuna: str
    ask_comuna_any: str
    ask_age_band: str
    ask_gender: str
    profile_done: str
    btn_skip: str
    btn_back: str
    use_buttons: str
    use_commands: str
    which: str
    question_header: str
    context_header: str
    btn_facts: str
    subquestions_header: str
    agreement_hint: str
    desirable_hint: str
    desirable_hint_no_options: str
    btn_next: str
    write_prompt: str
    system_prompt: str
    btn_system_unknown: str
    more_prompt: str
    more_prompt_after_no: str
    save_confirm: str
    btn_save_yes: str
    btn_save_no: str
    not_saved: str
    reason_saved: str
    reason_check: str
    btn_reason_keep: str
    btn_reason_new: str
    judge_hint: str
    judge_numbers: str
    btn_done: str
    no_desirable: str
    text_too_long: str
    text_empty: str
    stale_button: str
    unsupported: str
    edited: str
    unknown_command: str
    help: str
    menu_prompt: str
    btn_close: str
    profile_place: str
    profile_age_band: str
    profile_gender: str
    profile_not_given: str
    closed: str
    review_empty: str
    review_prompt: str
    btn_edit_text: str
    btn_goto: str
    btn_delete: str
    delete_confirm: str
    btn_delete_yes: str
    btn_delete_no: str
    review_edit_prompt: str
    review_deleted: str
    review_updated: str
    erase_confirm: str
    btn_erase_yes: str
    btn_erase_no: str
    erased: str
    erase_cancelled: str
    nothing_stored: str
    nothing_to_cancel: str
    cancelled: str
    skipped: str
    summary_question: str
    summary_title: str
    summary_empty: str
    summary_desirable: str
    summary_possible: str
    summary_none: str
    summary_reason: str
    summary_enabler: str
    glossary_header: str
    no_glossary: str
    finished_again: str
    version_changed: str
    removed_question: str
    private_only: str
    organiser_only: str
    invite_usage: str
    invite_unknown_comuna: str
    invite_created: str
    invite_institution: str
    progress_header: str
    progress_line: str
    progress_totals: str
    results_not_yet: str
    consultation_closed: str
    final_summary: str
    results_header: str
    commands: dict[str, str]
    # --- hardening (issue 12): keys added together at the end of messages_es.yaml ---
    invitation_erased: str
    results_too_soon: str

    @model_validator(mode="after")
    def _known_placeholders(self) -> Messages:
        """An override may drop a {placeholder} but not invent one the engine cannot fill."""
        defaults = _catalogue()
        for name, text in self:
            if not isinstance(text, str):
                continue
            allowed = _placeholders(str(defaults.get(name, "")))
            unknown = _placeholders(text) - allowed
            if unknown:
                known = ", ".join(sorted(allowed)) or "none"
                raise ValueError(
                    f"{name}: unknown placeholder(s) {sorted(unknown)}; known: {known}"
                )
        return self


@dataclass(frozen=True)
class Definition:
    """A loaded consultation: its content, its interface texts and its version."""

    consultation: Consultation
    messages: Messages
    version: str
    source: str
    text: str


def bundled_path() -> Path:
    """The path of the bundled default consultation (the Coquimbo 2020 workshop)."""
    return Path(str(resources.files("flows") / BUNDLED))


def load(path: str | Path | None = None) -> Definition:
    """Read and validate a consultation file (the bundled one when ``path`` is None)."""
    file = Path(path) if path else bundled_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(str(file), [Problem("", None, f"cannot read file: {exc}")]) from exc
    return parse(text, str(file))


def parse(text: str, source: str = "<consultation>") -> Definition:
    """Validate a consultation given as YAML text; raises ``DefinitionError`` with every problem."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DefinitionError(source, [Problem("", line, f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise DefinitionError(source, [Problem("", 1, "the file must be a YAML mapping")])

    problems: list[Problem] = []
    consultation: Consultation | None = None
    try:
        consultation = Consultation.model_validate(data, context={"defer_references": True})
    except ValidationError as exc:
        problems += _problems(exc, root)
    else:
        problems += [
            Problem(_place(loc), _line(root, loc), message)
            for loc, message in reference_problems(consultation)
        ]
    messages: Messages | None = None
    try:
        overrides = data.get("messages") or {}
        messages = Messages.model_validate({**_catalogue(), **overrides})
    except (ValidationError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            problems += [
                Problem(
                    "messages." + ".".join(str(p) for p in e["loc"]),
                    _line(root, ("messages", *e["loc"])),
                    e["msg"],
                )
                for e in exc.errors()
            ]
        else:
            problems.append(Problem("messages", _line(root, ("messages",)), "must be a mapping"))
    if problems or consultation is None or messages is None:
        # in the file's order; a bad message override is reported by both models: say it once
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise DefinitionError(source, list(dict.fromkeys(problems)))
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return Definition(consultation, messages, version, source, text)


def _placeholders(text: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field}
    except ValueError:  # an unbalanced brace
        return {"{"}


def _catalogue() -> dict[str, Any]:
    return catalogue.load("flows", "messages_es.yaml")


def _problems(exc: ValidationError, root: yaml.Node | None) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        out.append(Problem(_place(loc), _line(root, loc), msg))
    return out


def _place(loc: tuple[Any, ...]) -> str:
    """``('questions', 3, 'options', 2, 'id')`` → ``questions[3].options[2].id``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
