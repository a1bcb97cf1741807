"""Themes in free text: Spanish-aware normalisation and grouping, measured on a labelled fixture.

The fixture (fixtures/themes_es.yaml) has 86 answers in 8 themes plus one-offs, written the
way participants write: paraphrases, missing accents, other word forms. Measured with the
defaults: purity 0.895 (the share of each group's majority label, weighted by group size),
98.7% of the themed answers in a group, pair precision 0.84, 5 of 7 hand-picked paraphrase
pairs together, 5 of 5 look-alike pairs apart. The thresholds below leave a small margin under
those numbers: 0.85 purity means fewer than 3 answers in 20 are in a group of another theme.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.cli.textbank import labelled_changes
from reports import themes
from reports.themes import Theme, group_themes, normalise

FIXTURE = Path(__file__).parent / "fixtures" / "themes_es.yaml"

MIN_PURITY = 0.85
MIN_COVERAGE = 0.90
MIN_PAIR_PRECISION = 0.75
MIN_TOGETHER = 5  # of the 7 hand-picked paraphrase pairs


def load_fixture(
    path: Path = FIXTURE,
) -> tuple[list[str], list[str], dict[str, list[list[str]]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    texts: list[str] = []
    labels: list[str] = []
    for label, answers in data["themes"].items():
        texts += answers
        labels += [label] * len(answers)
    for k, answer in enumerate(data["unrelated"]):
        texts.append(answer)
        labels.append(f"one-off {k}")  # each its own label: joining anything is an error
    return texts, labels, {"together": data["together"], "apart": data["apart"]}


TEXTS, LABELS, PAIRS = load_fixture()
UNSEEN = Path(__file__).parent / "fixtures" / "themes_es_2.yaml"
"""Written after the grouping was built; no setting was chosen on it. Measured with the
defaults: purity 0.787, 89.8% of the themed answers grouped, pair precision 0.581 (against
0.895, 98.7% and 0.841 on the fixture the settings were chosen on): short answers on
subjects without shared words (jobs, internet, astronomy) are grouped through words like
"región" or "comunas"."""


def purity(found: list[Theme], labels: list[str]) -> float:
    grouped = sum(t.size for t in found)
    majority = sum(Counter(labels[i] for i in t.members).most_common(1)[0][1] for t in found)
    return majority / grouped


def group_of(found: list[Theme]) -> dict[int, int]:
    return {i: k for k, t in enumerate(found) for i in t.members}


@pytest.fixture(scope="module")
def fixture_themes() -> list[Theme]:
    return group_themes(TEXTS, max_themes=50)


@pytest.fixture(scope="module", autouse=True)
def report_measures(pytestconfig: pytest.Config, fixture_themes: list[Theme]) -> None:
    """Show what the fixture measures in every run (with or without -s), not only when a
    test fails."""
    found = fixture_themes
    line = (
        f"themes_es.yaml: {len(found)} groups, purity {purity(found, LABELS):.3f}, "
        f"{themed_coverage(found):.1%} of themed answers grouped, "
        f"pair precision {pair_precision(found):.3f}"
    )
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{line}")


def themed_coverage(found: list[Theme]) -> float:
    themed = [i for i, label in enumerate(LABELS) if not label.startswith("one-off")]
    grouped = group_of(found)
    return sum(i in grouped for i in themed) / len(themed)


def pair_precision(found: list[Theme]) -> float:
    """Of the pairs of answers put in one group, the share with one label."""
    same = together = 0
    for t in found:
        for a, b in itertools.combinations(t.members, 2):
            together += 1
            same += LABELS[a] == LABELS[b]
    return same / together


# --- normalisation ----------------------------------------------------------------------


def test_accents_and_case_do_not_matter() -> None:
    assert normalise("ENERGÍAS") == normalise("energias") == normalise("Energías") == ["energi"]
    assert normalise("energía") == normalise("energia")
    assert normalise("Educación") == normalise("educacion")
    assert normalise("Perú") == normalise("peru")
    assert normalise("niños") == normalise("ninos")


def test_word_forms_share_a_stem() -> None:
    assert len(set(map(tuple, map(normalise, ["desalinizar", "desalinización"])))) == 1
    assert normalise("desalinizadora") == normalise("desalinizar")
    assert normalise("becas") == normalise("beca")
    assert normalise("exportaciones") == normalise("exportar")
    assert normalise("energética") == normalise("energético")
    assert normalise("turísticas") == normalise("turistico")
    # a stemmer, not a lemmatiser: some relatives keep their own stem (said in the limits)
    assert normalise("energético") != normalise("energía")


def test_stop_words_punctuation_digits_and_emoji_go() -> None:
    assert normalise("de la que el en y a los del se las por un para con no una su al lo") == []
    assert normalise("👍👍 !!! 2020 ... ") == []
    assert normalise("") == []
    assert normalise("Más turismo, por favor!!! 🙏") == normalise("turismo favor")


def test_asking_verbs_do_not_make_a_theme() -> None:
    assert normalise("Fomentar el turismo") == normalise("promover el turismo")
    assert normalise("mejorar la salud") == normalise("salud")
    # "solo" would stem like "solar" and join tourism to solar energy
    assert normalise("no solo en verano") == normalise("verano")
    assert normalise("energía solar") != normalise("energía")


def test_hyphenated_words_are_joined() -> None:
    assert normalise("corredor bi-oceánico") == normalise("corredor bioceánico")


# --- grouping on the labelled fixture ---------------------------------------------------


def test_groups_are_pure(fixture_themes: list[Theme]) -> None:
    measured = purity(fixture_themes, LABELS)
    assert measured >= MIN_PURITY, f"purity {measured:.3f} < {MIN_PURITY}"


def test_most_themed_answers_are_grouped_and_one_offs_mostly_not(
    fixture_themes: list[Theme],
) -> None:
    coverage = themed_coverage(fixture_themes)
    assert coverage >= MIN_COVERAGE, f"only {coverage:.1%} of themed answers grouped"
    grouped = group_of(fixture_themes)
    one_offs = [i for i, label in enumerate(LABELS) if label.startswith("one-off")]
    assert sum(i in grouped for i in one_offs) <= 2
    for i in one_offs:  # no two one-offs make a theme together
        assert all(grouped.get(j) != grouped.get(i) for j in one_offs if j != i and i in grouped)


def test_pairs_of_grouped_answers_share_a_label(fixture_themes: list[Theme]) -> None:
    measured = pair_precision(fixture_themes)
    assert measured >= MIN_PAIR_PRECISION, f"pair precision {measured:.3f}"


def test_every_theme_of_the_fixture_leads_a_group(fixture_themes: list[Theme]) -> None:
    leading = {Counter(LABELS[i] for i in t.members).most_common(1)[0][0] for t in fixture_themes}
    expected = {label for label in LABELS if not label.startswith("one-off")}
    assert expected <= leading


def test_paraphrases_together_and_look_alikes_apart(fixture_themes: list[Theme]) -> None:
    grouped = group_of(fixture_themes)
    index = {text: i for i, text in enumerate(TEXTS)}

    def same(a: str, b: str) -> bool:
        return index[a] in grouped and grouped.get(index[a]) == grouped.get(index[b])

    apart = [pair for pair in PAIRS["apart"] if same(*pair)]
    assert apart == [], f"look-alikes grouped together: {apart}"
    together = [pair for pair in PAIRS["together"] if same(*pair)]
    missed = [pair for pair in PAIRS["together"] if pair not in together]
    assert len(together) >= MIN_TOGETHER, f"paraphrases apart: {missed}"


# --- what a theme looks like ------------------------------------------------------------


def test_themes_are_well_formed(fixture_themes: list[Theme]) -> None:
    found = group_themes(TEXTS)
    assert 1 <= len(found) <= 12  # max_themes
    sizes = [t.size for t in found]
    assert sizes == sorted(sizes, reverse=True)
    seen: set[int] = set()
    for t in found:
        assert t.size == len(t.members) >= 2
        assert list(t.members) == sorted(t.members)
        assert seen.isdisjoint(t.members)
        seen |= set(t.members)
    assert found == fixture_themes[: len(found)]


def test_labels_are_the_most_central_answer_verbatim(fixture_themes: list[Theme]) -> None:
    """A theme is named by its most central answer (spaces collapsed, clipped at a word);
    its key words are words as written in the answers, capitals and accents kept."""
    written = {w for text in TEXTS for w in themes._WORD.findall(text)}
    for t in fixture_themes:
        assert t.examples[0] in {TEXTS[i] for i in t.members}
        central = " ".join(t.examples[0].split())
        assert t.label == central or (t.label.endswith("…") and central.startswith(t.label[:-1]))
        assert len(t.label) <= themes.LABEL_LENGTH
        assert 1 <= len(t.words) <= 3
        stems = {s for i in t.members for s in normalise(TEXTS[i])}
        for word in t.words:
            assert word in written, f"{word!r} is not written in any answer"
            assert normalise(word)[0] in stems, f"{word!r} is not a word of {t.label!r}"


def test_proper_nouns_keep_their_capitals() -> None:
    texts = ["convenio con Henan en agricultura", "cooperación con Henan en comercio",
             "aprender de Henan sobre tecnología", "intercambio con Henan"]  # fmt: skip
    (theme,) = group_themes(texts)
    assert "Henan" in theme.words


def test_a_theme_that_restates_an_option_is_marked() -> None:
    texts = ["más energía solar en las escuelas", "energías alternativas para la minería",
             "energía solar y eólica", "energías alternativas en el norte"]  # fmt: skip
    (theme,) = group_themes(texts)
    options = ["Corredor bioceánico con San Juan", "Energías alternativas"]
    assert themes.restated(theme, options) == "Energías alternativas"
    assert themes.restated(theme, ["Corredor bioceánico con San Juan", "Educación"]) is None


def test_examples_are_verbatim_members(fixture_themes: list[Theme]) -> None:
    for t in fixture_themes:
        assert 1 <= len(t.examples) <= 2
        assert len(set(t.examples)) == len(t.examples)
        member_texts = {TEXTS[i] for i in t.members}
        for example in t.examples:
            assert example in member_texts  # raw, not normalised, not escaped


def test_examples_are_not_escaped() -> None:
    texts = ["agua <potable> & riego", "agua <potable> y riego tecnificado"]
    (theme,) = group_themes(texts)
    assert set(theme.examples) == set(texts)


def test_deterministic() -> None:
    first = group_themes(TEXTS, random_state=3)
    assert group_themes(list(TEXTS), random_state=3) == first
    assert group_themes(TEXTS, random_state=4) == first  # exact below EXACT_LIMIT


# --- edge cases -------------------------------------------------------------------------


def test_nothing_to_group() -> None:
    assert group_themes([]) == []
    assert group_themes(["turismo"]) == []  # one answer is not a theme (min_size 2)
    assert group_themes(["👍", "no sé", "", "   ", "de la que", "2020"]) == []
    assert group_themes(TEXTS, max_themes=0) == []


def test_one_text_with_min_size_one() -> None:
    (theme,) = group_themes(["Más turismo en el Valle de Elqui"], min_size=1)
    assert theme.members == (0,) and theme.examples == ("Más turismo en el Valle de Elqui",)
    assert theme.words[0] in {"turismo", "Valle", "Elqui"}  # as written


def test_repeated_answers_count_each_time() -> None:
    texts = ["Más turismo!", "más turismo", "MAS TURISMO", "👍", "paneles solares"]
    (theme,) = group_themes(texts)
    assert theme.size == 3 and theme.members == (0, 1, 2)
    assert theme.examples == ("Más turismo!",)
    assert theme.words == ("turismo",)


def test_long_answers() -> None:
    long_water = ("Desalinizar el agua de mar y cuidar el riego en los valles. " * 17)[:1000]
    long_other = ("Cooperación con Perú y el comercio con Tacna y Arequipa. " * 18)[:1000]
    texts = [long_water, "agua de mar desalinizada para el riego", long_other, "comercio con Perú"]
    found = group_themes(texts)
    assert sorted(t.members for t in found) == [(0, 1), (2, 3)]


# --- above EXACT_LIMIT: groups of a sample, every answer joined to the closest --------------


def test_sampled_grouping_is_pure_on_generated_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(themes, "EXACT_LIMIT", 500)
    texts, labels = labelled_changes(4000, seed=1)
    found = group_themes(texts, max_themes=40)
    grouped = sum(t.size for t in found)
    assert grouped / len(texts) >= 0.7
    # about one generated answer in eight joins two topics ("... y ..."), labelled by the
    # first: measured 0.878 with the text bank, so 0.85 leaves a small margin
    assert purity(found, labels) >= 0.85
    assert group_themes(texts, max_themes=40) == found  # deterministic
    assert group_themes(texts, max_themes=40, random_state=1) != found  # the sample changed


def test_sampled_grouping_keeps_a_repeated_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(themes, "EXACT_LIMIT", 50)
    texts, _ = labelled_changes(400, seed=2)
    texts += ["Queremos un observatorio ciudadano de glaciares"] * 300
    found = group_themes(texts)
    assert found[0].size >= 300
    assert "glaciares" in found[0].words


def test_a_labelled_set_not_used_for_tuning() -> None:
    """The thresholds sit under the first measurement (see ``UNSEEN``) and stay there."""
    texts, labels, _ = load_fixture(UNSEEN)
    found = group_themes(texts, max_themes=50)
    assert purity(found, labels) >= 0.75
    themed = {i for i, label in enumerate(labels) if not label.startswith("one-off")}
    grouped = themed & {i for t in found for i in t.members}
    assert len(grouped) / len(themed) >= 0.85
