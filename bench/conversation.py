"""Benchmark: what the bundled consultation costs a citizen on a phone (issue 14's budgets).

Usage (from the repository root)::

    python -m bench.conversation                      # this tree, and d63648b as baseline
    python -m bench.conversation --baseline-commit REV
    python -m bench.conversation --no-baseline

Method
------
Two citizens talk to the flow engine (``flows.step``, no storage, no Telegram), each as a
policy that reads the replies the way a person reads the screen:

* **careful**: /start, consents, gives comuna (province then comuna), age band and gender,
  agrees at A with a reason, types two changes of their own at each desirable question,
  then judges each change at the feasibility question (half of them possible) and gives
  one enabler. Figures: inputs from /start to the summary, characters of every message
  read (a message edited in place counts again only if its text changed), messages, the
  longest message. **careful_tagging** does the same and also tags each change with a
  system of the regional strategy.
* **hurried**: types what the buttons say ("si", "limari", "hombre", "peru", "listo"...),
  answers in one word, resumes with /start in the middle. Figure: refused button words,
  i.e. typed words naming an offered button after which nothing was stored and the
  participant is where they were.

The baseline is the same script run on another commit (a temporary ``git worktree``, the
old ``flows`` first on ``PYTHONPATH``); its figures come back as JSON. The last line printed
is one JSON object with both runs and the ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASELINE = "d63648b"
READ_PER_MINUTE = 1000
"""Characters a person reads in a minute (about 200 words of Spanish)."""
TYPE_SECONDS = 20
"""Thinking and typing one message of their own on a phone."""
TAP_SECONDS = 3

PROFILE = ("Limarí", "Río Hurtado", "45 a 59", "Mujer")
REASON = "Porque la región necesita socios que entiendan sus problemas de agua y empleo."
CHANGES = {
    "q1": [
        "Un convenio con la provincia de San Juan para el intercambio de estudiantes.",
        "Una red de municipios costeros del Pacífico sur para compartir experiencias.",
    ],
    "q2": [
        "Aprender de Israel el riego por goteo para ahorrar agua en el valle.",
        "Traer médicos especialistas de Cuba a los hospitales de la provincia.",
    ],
    "q3": [
        "Que cada municipalidad tenga una oficina de relaciones internacionales.",
        "Capacitar a los funcionarios municipales en proyectos de cooperación.",
    ],
    "q4": [
        "Más becas para que jóvenes de la región estudien en el extranjero.",
        "Promover el turismo de la región en ferias de Argentina y Brasil.",
    ],
}
SYSTEMS = ("Social", "Territorial", "Producción", "Social", "Institucional", "Institucional",
           "Social", "Producción")  # fmt: skip
ENABLER = "Un fondo regional para proyectos conjuntos y personas dedicadas a ello."
HURRIED = [
    ("start", ""),
    ("text", "si"),
    ("text", "limari"),
    ("text", "rio hurtado"),
    ("text", "45 a 59"),
    ("text", "hombre"),
    ("text", "de acuerdo"),
    ("text", "omitir"),
    ("text", "peru"),
    ("text", "siguiente"),
    ("start", ""),
    ("text", "energias"),
    ("text", "listo"),
    ("text", "ok"),
    ("text", "Más becas para estudiar afuera"),  # FREE_CHANGE
    ("text", "social"),
    ("text", "listo"),
    ("text", "1 y 3"),
    ("text", "listo"),
    ("text", "omitir"),
]
"""(kind, value): every "text" but the free change is a word of a button of that step."""
FREE_CHANGE = "Más becas para estudiar afuera"


@dataclass
class Figures:
    inputs: int = 0
    characters: int = 0
    messages: int = 0
    longest: int = 0
    over_700: int = 0
    typed: int = 0
    finished: bool = False
    transcript: list[str] = field(default_factory=list)

    def read(self, replies: Any) -> None:
        from flows import prompts

        # as the chat shows them (joined where they fit), on trees that join them
        for r in getattr(prompts, "as_messages", list)(replies):
            if r.replace and self.transcript and self.transcript[-1] == r.text:
                continue  # only the buttons of the message on screen changed
            self.characters += len(r.text)
            self.messages += 1
            self.longest = max(self.longest, len(r.text))
            self.over_700 += len(r.text) > 700
            self.transcript.append(r.text)


def careful(tagging: bool = False) -> Figures:
    import flows
    from flows.events import Choice, Start, Text

    defn = flows.load()
    m = defn.messages
    fig = Figures()
    pending = {q: list(texts) for q, texts in CHANGES.items()}
    given: list[str] = []
    systems = list(SYSTEMS)
    enabled = False
    state = None
    event: Any = Start("")
    for _ in range(200):
        result = flows.step(defn, state, event)
        fig.inputs += 1
        fig.typed += isinstance(event, Text)
        fig.read(result.replies)
        state = result.state
        if any(type(r).__name__ == "Finished" for r in result.records):
            fig.finished = True
            break
        buttons = {b.label.removeprefix("✅ "): b.data for r in result.replies
                   for row in r.buttons for b in row}  # fmt: skip
        labels = list(buttons)

        def press(label: str, buttons: dict[str, str] = buttons) -> Any:
            return Choice(buttons[label])

        if state is None:
            event = press(m.consent_yes)
            continue
        wanted = [x for x in PROFILE if x in labels]
        if state.stage == "profile" and wanted:
            event = press(wanted[0])
            continue
        q = state.question or ""
        step = state.step
        if q == "a":
            event = press("De acuerdo") if step == "ask" else Text(REASON)
            continue
        if q in pending:
            todo = pending[q]
            system = next((s for s in (systems[:1]) if s in labels), None)
            if system is not None and step == "system" and tagging:
                systems.pop(0)
                event = press(system)
            elif step == "system" and not hasattr(m, "btn_system_unknown"):
                event = press(m.btn_skip)  # older versions: the system must be answered
            elif todo and getattr(m, "btn_more_yes", None) in labels:
                event = press(m.btn_more_yes)
            elif todo:
                given.append(todo[0])
                event = Text(todo.pop(0))
            else:
                done = [x for x in (m.btn_next, getattr(m, "btn_more_no", "")) if x in labels]
                event = press(done[0])
            continue
        # the feasibility question: every other change of theirs is possible
        possible = set(given[::2])
        if step == "enabler":
            event = Text(ENABLER) if not enabled else press(m.btn_skip)
            enabled = True
            continue
        text = result.replies[-1].text
        if "Sí" in labels and "No" in labels:  # one change at a time (the old question 5)
            verdict = "Sí" if any(c in text for c in possible) else "No"
            event = press(verdict)
            continue
        raw = [b.label for r in result.replies for row in r.buttons for b in row]
        unmarked = [
            label for label in raw
            if not label.startswith("✅") and any(c[:20] in label for c in possible)
        ]  # fmt: skip
        event = press(unmarked[0]) if unmarked else press(m.btn_done)
    return fig


def hurried() -> dict[str, Any]:
    """Type the words of ``HURRIED``; a refused word is followed by a tap on the button it
    named (found with this tree's matching, whatever tree is measured), as a person would."""
    import flows
    from flows.events import Choice, Start, Text

    matching = _matching()
    defn = flows.load()
    state = None
    refused: list[str] = []
    taps = 0
    buttons: list[Any] = []
    for kind, value in HURRIED:
        event = Start(value) if kind == "start" else Text(value)
        result = flows.step(defn, state, event)
        unchanged = result.state == state and not result.records
        buttons = [b for r in result.replies for row in r.buttons for b in row] or buttons
        if kind == "text" and value != FREE_CHANGE and unchanged:
            refused.append(value)
            named = matching.candidates(value, buttons, lambda b: _role(matching.fold(b.label)))
            if named:
                result = flows.step(defn, state, Choice(named[0].data))
                buttons = [b for r in result.replies for row in r.buttons for b in row] or buttons
                taps += 1
        state = result.state
    words = sum(1 for kind, value in HURRIED if kind == "text" and value != FREE_CHANGE)
    return {"typed_button_words": words, "refused": len(refused), "refused_words": refused,
            "taps_after_refusal": taps}  # fmt: skip


def _role(label: str) -> str | None:
    """A button's role read from its label, for trees whose buttons say nothing of it."""
    if label.startswith(("siguiente", "listo", "no siguiente")):
        return "done"
    return "yes" if label.startswith("si") else "no" if label.startswith("no") else None


def _matching() -> Any:
    """This tree's ``flows.matching`` (also when an older tree's ``flows`` is imported)."""
    path = Path(__file__).resolve().parent.parent / "flows" / "matching.py"
    spec = importlib.util.spec_from_file_location("bench_matching", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure() -> dict[str, Any]:
    figures = {}
    for name, tagging in (("careful", False), ("careful_tagging", True)):
        figures[name] = asdict(careful(tagging))
        figures[name].pop("transcript")
    return {**figures, "hurried": hurried()}


def baseline(commit: str) -> dict[str, Any]:
    """This script's figures on ``commit``, from a temporary worktree."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-q", str(tree),
                        commit], check=True)  # fmt: skip
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--here"],
                cwd=tree, env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                           check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-commit", default=BASELINE)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--here", action="store_true", help="only this tree, JSON only")
    parser.add_argument("--transcript", action="store_true", help="print the careful chat")
    parser.add_argument("--quick", action="store_true", help="the same: it takes a second")
    args = parser.parse_args()
    if args.transcript:
        for text in careful().transcript:
            print(text, end="\n---\n")
        return
    now = measure()
    if args.here:
        print(json.dumps(now))
        return
    before = None if args.no_baseline else baseline(args.baseline_commit)
    rows = [("inputs", "careful", "inputs"), ("characters", "careful", "characters"),
            ("messages", "careful", "messages"), ("longest message", "careful", "longest"),
            ("messages over 700", "careful", "over_700"),
            ("inputs, tagging systems", "careful_tagging", "inputs"),
            ("characters, tagging", "careful_tagging", "characters"),
            ("refused button words", "hurried", "refused")]  # fmt: skip
    print(f"{'figure':<24}{'this tree':>12}{'baseline':>12}{'ratio':>8}")
    ratios = {}
    for name, who, key in rows:
        new = now[who][key]
        old = before[who][key] if before else None
        ratio = round(new / old, 2) if old else None
        ratios[name] = ratio
        print(f"{name:<24}{new:>12}{old if old is not None else '-':>12}{ratio or '-':>8}")
    careful_now = now["careful"]
    taps = careful_now["inputs"] - careful_now["typed"]
    seconds = careful_now["typed"] * TYPE_SECONDS + taps * TAP_SECONDS
    minutes = careful_now["characters"] / READ_PER_MINUTE + seconds / 60
    now["careful"]["minutes"] = round(minutes, 1)
    print(f"careful citizen's time, estimated: {minutes:.0f} minutes (the welcome's estimate)")
    print(f"hurried, refused words: {now['hurried']['refused_words']}")
    if before:
        print(f"baseline ({args.baseline_commit}), refused: {before['hurried']['refused_words']}")
    print(json.dumps({"current": now, "baseline": before, "baseline_commit": args.baseline_commit,
                      "ratios": ratios}, ensure_ascii=False))  # fmt: skip


if __name__ == "__main__":
    main()
