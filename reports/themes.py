"""Themes in free text: answers that say the same thing in different words, grouped.

Pure functions over a sequence of texts (no Telegram, no database). ``group_themes`` returns
the largest groups first, each named by its most representative words and shown by one or
two answers closest to its centre. Examples are returned **verbatim and unescaped**: escaping
(HTML, Markdown) is the renderer's job.

How it works
------------
1. ``normalise``: casefold; strip accents and diacritics (NFKD, so "energía", "energia" and
   "ENERGÍA" are one word and "ñ" reads as "n"); split into words (letters only: digits,
   punctuation and emoji go; a hyphenated word is joined: "bi-oceánico" = "bioceánico");
   drop stop words; stem with the Snowball Spanish stemmer (package ``snowballstemmer``), so
   "desalinizar", "desalinización" and "desalinizadora" share the stem "desaliniz".
   Stop words are the Snowball project's Spanish list (function words and the forms of
   estar/haber/ser/tener) plus a short list of this module's own: verbs of asking that every
   consultation answer uses and that say nothing about its theme (mejorar, fomentar,
   promover, potenciar, impulsar, …), matched by stem so that every form of them goes.
2. Answers with the same normalised words are one point, weighted by how many answers it
   stands for: a repeated answer costs nothing more.
3. TF-IDF (scikit-learn's ``TfidfVectorizer`` over the stems; unigrams and bigrams; sublinear
   term frequency; L2 norm), so that two answers are close when they share rare words.
4. Grouping: average-linkage agglomerative clustering with cosine distance (SciPy), cut at
   ``DISTANCE``: a group is a set of answers whose mean pairwise cosine similarity is at least
   ``1 - DISTANCE``, so the number of groups follows from the data, not from a guess. The cut
   is loose (short answers share one or two words at best) and chosen on the labelled
   fixture tests/reports/fixtures/themes_es.yaml: tighter cuts split every theme into pairs,
   looser ones merge themes through words like "región" or "cooperación".
   The distance matrix is quadratic, so above ``EXACT_LIMIT`` distinct answers the groups are
   found in a sample of ``EXACT_LIMIT`` of them (drawn with probability proportional to how
   often each was given; ``random_state`` seeds it), and every answer then joins the sampled
   group it is most similar to on average (the mean cosine similarity of a unit vector to a
   group is its dot product with the group's mean, one sparse product for all). Only the
   largest themes are shown, and a theme big enough to be among them is in the sample.
   (Measured and dropped: MiniBatchKMeans micro-clusters, linked the same way, were 3× slower
   at 300,000 answers and less pure on the generated ones, 0.93 against 1.00.)
5. Every member must be close to its group (mean similarity to it at least ``MEMBER_FLOOR``):
   an answer that only rides along in an average-linkage chain, or is far from every sampled
   group, goes to no theme. Groups smaller than ``min_size`` answers go to no theme, and so
   do all but the ``max_themes`` largest.
6. A theme is named by its most central answer (the closest to the group's mean), verbatim
   but for spaces, clipped at a word; its key words are the stems with the highest weight
   in its centroid, each shown as the most frequent spelling of that stem in the input
   (capitals and accents kept: "Henan", "energía", not "energi"). Its examples are the
   answers closest to the centre, the label first.

Limits
------
* Words, not meaning: two answers are grouped only if they share stems, directly or through
  other answers of the group. Synonyms without a common stem ("ancianos" / "adultos
  mayores", "sobrepeso" / "obesidad") are not known to be the same unless other answers
  use both; sarcasm and negation are not understood ("no" is a stop word).
* Typos that change the stem ("turimso") are other words; Snowball is a stemmer, not a
  lemmatiser, so some related words keep different stems ("estudiantil" / "estudiar").
* Spanish only; answers in another language are grouped by their own words at best.
* The cut ``DISTANCE`` was chosen on one labelled fixture of 86 answers; very short answers
  (one or two words) are grouped on little evidence, and one theme may come out as two
  groups (e.g. "turismo" and "turistas", whose stems differ).
* Above ``EXACT_LIMIT`` distinct answers, themes rarer than about one answer in a thousand
  may not be in the sample and so are not found (they would not be among the largest).

Cost: normalising is a cached look-up per word (with PyStemmer installed, ``snowballstemmer``
uses its C implementation: about 100× faster on the first sight of each word), the matrix is
sparse, the clustering is quadratic in ``EXACT_LIMIT`` only and the assignment linear in the
number of distinct answers: ``python -m bench.themes 300000`` measures time and peak RSS.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import snowballstemmer
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

DISTANCE = 0.95
"""Cut of the average-linkage dendrogram, in cosine distance (0 = same words, 1 = none)."""
MEMBER_FLOOR = 0.15
"""Least mean cosine similarity of an answer to the rest of its group."""
EXACT_LIMIT = 3000
"""Up to this many distinct answers the clustering is exact (a dense distance matrix)."""
LABEL_WORDS = 3
"""How many key words a theme lists."""
LABEL_LENGTH = 90
"""Longest label, in characters (a longer central answer is clipped at a word)."""
RESTATES = 0.5
"""A theme restates an option when at least this share of the option's words are among the
theme's key words or in its label."""
EXAMPLES = 2
"""At most this many example answers per theme."""


@dataclass(frozen=True)
class Theme:
    """A group of answers that say the same thing, largest first in ``group_themes``."""

    label: str
    """Its most central answer, verbatim but for spaces, clipped to ``LABEL_LENGTH``."""
    words: tuple[str, ...]
    """Its most representative words, each as the most frequent spelling of its stem among
    the distinct answers (capitals and accents kept: "Henan", "energía")."""
    size: int
    """How many answers it holds (repeated answers count each time)."""
    examples: tuple[str, ...]
    """One or two answers closest to its centre, verbatim: raw text, escape it to show it."""
    members: tuple[int, ...]
    """Indices of its answers in the input, ascending."""


# The Snowball project's Spanish stop-word list (snowballstem.org, BSD licence), accents
# stripped as ``normalise`` strips them.
_SNOWBALL_STOP = """
de la que el en y a los del se las por un para con no una su al lo como mas pero sus le ya o
este si porque esta entre cuando muy sin sobre tambien me hasta hay donde quien desde todo nos
durante todos uno les ni contra otros ese eso ante ellos e esto mi antes algunos que unos yo
otro otras otra el tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas
algo nosotros mi mis tu te ti tu tus ellas nosotras vosotros vosotras os mio mia mios mias tuyo
tuya tuyos tuyas suyo suya suyos suyas nuestro nuestra nuestros nuestras vuestro vuestra
vuestros vuestras esos esas
estoy estas esta estamos estais estan este estes estemos esteis esten estare estaras estara
estaremos estareis estaran estaria estarias estariamos estariais estarian estaba estabas
estabamos estabais estaban estuve estuviste estuvo estuvimos estuvisteis estuvieron estuviera
estuvieras estuvieramos estuvierais estuvieran estuviese estuvieses estuviesemos estuvieseis
estuviesen estando estado estada estados estadas estad
he has ha hemos habeis han haya hayas hayamos hayais hayan habre habras habra habremos habreis
habran habria habrias habriamos habriais habrian habia habias habiamos habiais habian hube
hubiste hubo hubimos hubisteis hubieron hubiera hubieras hubieramos hubierais hubieran hubiese
hubieses hubiesemos hubieseis hubiesen habiendo habido habida habidos habidas
soy eres es somos sois son sea seas seamos seais sean sere seras sera seremos sereis seran
seria serias seriamos seriais serian era eras eramos erais eran fui fuiste fue fuimos fuisteis
fueron fuera fueras fueramos fuerais fueran fuese fueses fuesemos fueseis fuesen siendo sido
tengo tienes tiene tenemos teneis tienen tenga tengas tengamos tengais tengan tendre tendras
tendra tendremos tendreis tendran tendria tendrias tendriamos tendriais tendrian tenia tenias
teniamos teniais tenian tuve tuviste tuvo tuvimos tuvisteis tuvieron tuviera tuvieras
tuvieramos tuvierais tuvieran tuviese tuvieses tuviesemos tuvieseis tuviesen teniendo tenido
tenida tenidos tenidas tened
"""
_MORE_STOP = """
solo sola solos solas solamente cada vez veces menos tan tener ser haber ir va van vaya vayan voy
vamos puede pueden pueda puedan podemos hace hacen ahi aqui alla asi ademas bien segun ok gente
cosa cosas tema temas ejemplo hacia mediante tras traves respecto
"""
STOP_WORDS = frozenset(_SNOWBALL_STOP.split()) | frozenset(_MORE_STOP.split())
"""Spanish function words (accent-free), dropped before stemming: the Snowball list and a few
more that answers use without meaning a theme ("solo" would otherwise stem like "solar")."""

_FILLER = """
mejorar fomentar promover potenciar impulsar fortalecer incentivar apoyar crear generar aumentar
hacer poder podria podrian deber deberia deberian necesitar querer lograr buscar ojala etc
"""
FILLER_WORDS = frozenset(_FILLER.split())
"""Verbs of asking that say nothing about a theme; every form of them goes (matched by stem).
Kept short on purpose: a word here can never name or separate a theme."""

_STEMMER = snowballstemmer.stemmer("spanish")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def _strip_accents(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_FILLER_STEMS = frozenset(_STEMMER.stemWord(_strip_accents(w)) for w in FILLER_WORDS)


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """The stem of one casefolded word, or "" when it is a stop word."""
    plain = _strip_accents(word.replace("-", ""))
    if len(plain) < 2 or plain in STOP_WORDS:
        return ""
    stem: str = _STEMMER.stemWord(plain)
    return "" if stem in _FILLER_STEMS else stem


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def normalise(text: str) -> list[str]:
    """The stems of ``text``'s content words, in order: casefolded, accents stripped, stop
    words dropped, Snowball Spanish stems. "Energías" and "energia" give ["energi"]."""
    return [s for s in map(_stem, _words(text)) if s]


def group_themes(
    texts: Sequence[str], *, max_themes: int = 12, min_size: int = 2, random_state: int = 0
) -> list[Theme]:
    """Group ``texts`` into themes, largest first; answers that fit no group are in none.

    At most ``max_themes`` themes of at least ``min_size`` answers each; deterministic for a
    given ``random_state`` (used only above ``EXACT_LIMIT`` distinct answers, to sample)."""
    if max_themes <= 0 or not texts:
        return []

    # 1–2. Normalise, deduplicate: one point per distinct list of stems.
    key_of: dict[tuple[str, ...], int] = {}
    point_of = np.full(len(texts), -1, dtype=np.int64)
    first: list[int] = []
    keys: list[tuple[str, ...]] = []
    surfaces: Counter[str] = Counter()
    for i, text in enumerate(texts):
        key = tuple(s for s in map(_stem, _words(text)) if s)
        if not key:
            continue
        p = key_of.get(key)
        if p is None:
            p = key_of[key] = len(keys)
            keys.append(key)
            first.append(i)
            surfaces.update(_WORD.findall(text))  # as written: capitals kept
        point_of[i] = p
    if not keys:
        return []
    weight = np.bincount(point_of[point_of >= 0], minlength=len(keys)).astype(np.float64)

    # 3. TF-IDF over the distinct points.
    vectoriser = TfidfVectorizer(analyzer=_features, sublinear_tf=True, dtype=np.float64)
    x = csr_matrix(vectoriser.fit_transform(keys))
    names: np.ndarray = vectoriser.get_feature_names_out()

    # 4. Cluster the points.
    groups = _cluster(x, weight, random_state)

    # 5. Keep the close members of big enough groups.
    themes: list[np.ndarray] = []
    for points in groups:
        close = points[x[points] @ _mean(x, points, weight) >= MEMBER_FLOOR]
        if weight[close].sum() >= min_size:
            themes.append(close)
    themes.sort(key=lambda points: (-weight[points].sum(), int(points.min())))

    # 6. Name and show them.
    unigram = np.array([" " not in f for f in names])
    best_surface = _surface_forms(surfaces)
    theme_of_point = np.full(len(keys), -1, dtype=np.int64)
    for k, points in enumerate(themes[:max_themes]):
        theme_of_point[points] = k
    theme_of_text = np.where(point_of >= 0, theme_of_point[point_of], -1)
    result: list[Theme] = []
    for k, points in enumerate(themes[:max_themes]):
        centre = _mean(x, points, weight)
        sims = x[points] @ centre
        order = np.argsort(-np.where(unigram, centre, 0.0), kind="stable")
        stems = [names[j] for j in order[:LABEL_WORDS] if centre[j] > 0 and unigram[j]]
        shown = tuple(best_surface.get(s, s) for s in stems)
        central = sorted(
            range(len(points)),
            key=lambda k: (-round(float(sims[k]), 9), -weight[points[k]], first[points[k]]),
        )
        examples = tuple(texts[first[points[k]]] for k in central[:EXAMPLES])
        members = tuple(int(i) for i in np.flatnonzero(theme_of_text == k))
        result.append(
            Theme(
                label=_trim(examples[0]),
                words=shown,
                size=len(members),
                examples=examples,
                members=members,
            )
        )
    return result


def _features(stems: tuple[str, ...]) -> list[str]:
    """Unigrams and bigrams of the stems (stop words already gone)."""
    return [*stems, *(f"{a} {b}" for a, b in itertools.pairwise(stems))]


def _mean(x: csr_matrix, points: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weighted mean of the rows ``points`` of ``x`` (not normalised: the mean cosine
    similarity of a unit vector to the group is its dot product with this)."""
    w = weight[points]
    return np.asarray(x[points].T @ w).ravel() / w.sum()


def _cluster(x: csr_matrix, weight: np.ndarray, random_state: int) -> list[np.ndarray]:
    """Points of each average-linkage group at ``DISTANCE`` (singletons included when the
    clustering is exact; above ``EXACT_LIMIT`` points, the groups of a sample, each grown by
    the points closest to it)."""
    n = x.shape[0]
    if n <= EXACT_LIMIT:
        return _average_linkage(x, np.arange(n))
    # A weighted sample without replacement (Efraimidis–Spirakis): frequent answers first.
    rng = np.random.default_rng(random_state)
    priority = np.log1p(-rng.random(n)) / weight  # log of a uniform in (0, 1]
    sample = np.sort(np.argpartition(-priority, EXACT_LIMIT)[:EXACT_LIMIT])
    seeds = [g for g in _average_linkage(x[sample], sample) if weight[g].sum() >= 2]
    if not seeds:
        return []
    # Every point joins the seed group it is closest to on average, if close enough.
    rows = np.concatenate(seeds)
    cols = np.repeat(np.arange(len(seeds)), [len(g) for g in seeds])
    w = weight[rows] / np.bincount(cols, weights=weight[rows])[cols]
    centres = csr_matrix((w, (cols, rows)), shape=(len(seeds), n)) @ x
    best = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        sims = (x[start : start + _CHUNK] @ centres.T).toarray()
        pick = sims.argmax(axis=1)
        close = sims[np.arange(len(pick)), pick] >= MEMBER_FLOOR
        best[start : start + _CHUNK] = np.where(close, pick, -1)
    order = np.argsort(best, kind="stable")
    bounds = np.flatnonzero(np.diff(best[order])) + 1
    return [part for part in np.split(order, bounds) if best[part[0]] >= 0]


_CHUNK = 8192


def _average_linkage(x: csr_matrix, ids: np.ndarray) -> list[np.ndarray]:
    """Flat average-linkage clusters of ``ids`` (the rows of ``x``: unit vectors), cut at
    cosine distance ``DISTANCE``."""
    if len(ids) == 1:
        return [ids]
    dist = np.clip(1.0 - (x @ x.T).toarray(), 0.0, 2.0)
    condensed = dist[np.triu_indices(len(ids), k=1)]
    del dist
    tree = linkage(condensed, method="average")
    labels = fcluster(tree, t=DISTANCE, criterion="distance")
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [ids[part] for part in np.split(order, bounds)]


def _surface_forms(surfaces: Counter[str]) -> dict[str, str]:
    """For each stem, its most frequent surface form (ties: the accented, then the first in
    alphabetical order)."""
    best: dict[str, tuple[int, int, str]] = {}
    for word, n in surfaces.items():
        stem = _stem(word.casefold())
        if not stem:
            continue
        rank = (n, len(unicodedata.normalize("NFD", word)), word)
        if (
            stem not in best
            or rank[:2] > best[stem][:2]
            or (rank[:2] == best[stem][:2] and word < best[stem][2])
        ):
            best[stem] = rank
    return {stem: rank[2].replace("-", "") for stem, rank in best.items()}


def _trim(text: str) -> str:
    """``text`` with its spaces collapsed, clipped at a word to ``LABEL_LENGTH``."""
    text = " ".join(text.split())
    if len(text) <= LABEL_LENGTH:
        return text
    return text[: LABEL_LENGTH - 1].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"


def restated(theme: Theme, options: Sequence[str]) -> str | None:
    """The first of ``options`` (labels of the question's listed options) that ``theme``
    says again in other words, or None."""
    said = set(normalise(theme.label)) | set(normalise(" ".join(theme.words)))
    for option in options:
        stems = set(normalise(option))
        if stems and len(stems & said) / len(stems) >= RESTATES:
            return option
    return None
