"""One bank of Spanish texts as participants of the bundled consultation would write them,
for everything that simulates them: ``consulta demo`` (``bot/cli/demo.py``), the digest
benchmark (``bench/digest.py``) and the theme benchmark (``bench/themes.py``).

Two shapes of the same subjects: ``THEMES``, whole sentences per subject with how likely
each question is to get it (the demo, whose report a person reads); and ``TOPICS``,
templates with fillers and noise (``TextBank``), so that almost every generated text is
unique (the benchmarks' hundreds of thousands of answers). ``labelled_changes`` draws texts
with the topic each came from, to measure how pure the themes found are.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from importlib import resources

import yaml

COMUNA_POPULATION = {  # thousands of inhabitants (Censo 2017)
    "la_serena": 221, "coquimbo": 227, "andacollo": 11, "la_higuera": 4.2, "paihuano": 4.5,
    "vicuna": 27.8, "ovalle": 111, "combarbala": 13.3, "monte_patria": 30.8,
    "punitaqui": 10.9, "rio_hurtado": 4.3, "illapel": 30.8, "canela": 9.1,
    "los_vilos": 21.4, "salamanca": 29.3,
}  # fmt: skip
"""Thousands of inhabitants per comuna (census 2017): how simulated people spread."""


_DATA = yaml.safe_load(
    (resources.files("bot.cli") / "textbank_es.yaml").read_text(encoding="utf-8")
)


@dataclass(frozen=True)
class Theme:
    """Free-text changes about one subject: the system people tag them with, how likely
    they are under each question, and how possible by 2020 people think they are."""

    name: str
    system: str
    where: dict[str, float]
    feasible: tuple[int, int, int]
    texts: tuple[str, ...]


def _themes() -> tuple[Theme, ...]:
    return tuple(
        Theme(t["name"], t["system"], t["where"], tuple(t["feasible"]), tuple(t["texts"]))
        for t in _DATA["themes"]
    )


THEMES = _themes()
"""Whole sentences per subject (``textbank_es.yaml``), for the demo."""
AGREEMENT_REASONS = {
    "de_acuerdo": (
        "Porque la cooperación tiene que servir a los problemas reales de la región",
        "Los viajes y convenios solo se justifican si traen beneficios para la gente",
        "Así las relaciones internacionales serán más creíbles",
        "Es la manera de que la región no dependa solo de Santiago",
        "La región ya exporta a todo el mundo; falta que eso llegue a las comunas",
        "Sí, pero con participación de los municipios y de la sociedad civil",
    ),
    "en_parte": (
        "Depende de qué desafíos; primero hay que resolver los problemas locales",
        "De acuerdo, pero que no se gaste en viajes de autoridades",
        "Hay desafíos más urgentes que las relaciones internacionales",
    ),
    "en_desacuerdo": (
        "Es un gasto innecesario; hay necesidades más urgentes en la región",
        "Las relaciones internacionales le corresponden al gobierno central",
    ),
    "no_se": ("No conozco bien lo que hace hoy la región en este tema",),
}
ENABLERS = (
    "Un presupuesto regional estable para la cooperación",
    "Voluntad política del Gobierno Regional y del Consejo Regional",
    "Que participen los municipios y las universidades desde el comienzo",
    "Un equipo profesional dedicado a las relaciones internacionales",
    "Convenios con metas concretas y una evaluación pública de los resultados",
    "El apoyo del gobierno central y de la Cancillería",
    "Fondos de cooperación internacional, por ejemplo de la Unión Europea",
    "Que se mantenga en el tiempo aunque cambien las autoridades",
    "La participación de las empresas privadas y de las mineras",
    "Informar a la ciudadanía y hacerla parte de los proyectos",
    "Terminar a tiempo las obras de infraestructura",
    "Formar a los funcionarios en idiomas y en gestión de proyectos",
)
CONTACT_NAMES = (
    "María José Rojas", "Carlos Araya", "Paula Castillo", "Jorge Cortés", "Daniela Pizarro",
    "Luis Tapia", "Carolina Alfaro", "Rodrigo Vega", "Francisca Olivares", "Andrés Díaz",
    "Valentina Muñoz", "Felipe Rivera", "Camila Flores", "Héctor Barraza", "Javiera Ramírez",
)  # fmt: skip
"""Invented names for the simulated municipal contacts."""


def _topics() -> dict[str, tuple[str, float, list[tuple[str, list[str]]]]]:
    topics = _DATA["topics"]
    return {
        name: (t["system"], t["weight"], [(x["text"], x["fillers"]) for x in t["templates"]])
        for name, t in topics.items()
    }


COMUNAS_WORDS: list[str] = _DATA["comunas"]
TOPICS = _topics()
"""topic: (system it is usually tagged with, popularity, [(template, fillers)])."""
PREFIXES = ["Creo que hay que ", "Propongo: ", "Sería bueno ", "Me gustaría ", "Ojalá ",
            "Lo más importante: ", "Pienso que falta ", "Para mí, "]  # fmt: skip
SUFFIXES = [" en la región", " para los jóvenes", " al 2020", " en las comunas rurales",
            " con apoyo del gobierno regional", " y que dure en el tiempo", ". Es urgente",
            "!!", ", como se hace en otros países", " y no solo en La Serena",
            ", pensando en nuestros hijos", "."]  # fmt: skip
BECAUSE = [
    "así llegan más recursos", "la región tiene mucho potencial", "es lo que más falta",
    "los jóvenes se van", "otros países ya lo hicieron", "hoy no se ve en las comunas",
    "la sequía es cada vez peor", "nos haría más competitivos", "aquí sobra sol y viento",
    "crearía trabajo", "somos vecinos", "hay que pensar en el futuro", "el turismo da empleo",
    "hace años que se promete", "se perdería una gran oportunidad", "falta información",
    "así se integra a los que llegan", "lo necesitan los pequeños productores",
]  # fmt: skip


def strip_accents(s: str) -> str:
    """ "Vicuña" → "Vicuna": how people type without accents."""
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


class TextBank:
    """Desirable changes as people write them: a template, a filler, and noise."""

    def __init__(self, rng: random.Random, systems: list[str]) -> None:
        self.rng = rng
        self.systems = systems
        self.topics = list(TOPICS)
        self.weights = [TOPICS[t][1] for t in self.topics]

    def change(self, topic: str | None = None) -> tuple[str, str | None]:
        """A text about ``topic`` (drawn by popularity if None) and its system (None: not
        tagged)."""
        rng = self.rng
        if topic is None:
            topic = rng.choices(self.topics, self.weights)[0]
        usual, _, templates = TOPICS[topic]
        template, fillers = rng.choice(templates)
        s = template.format(rng.choice(fillers))
        if rng.random() < 0.12:  # two changes in one message
            other_template, other_fillers = rng.choice(TOPICS[rng.choice(self.topics)][2])
            other = other_template.format(rng.choice(other_fillers))
            s += rng.choice((" y ", ", también ", ". Además: ")) + other[0].lower() + other[1:]
        if rng.random() < 0.3:
            s = rng.choice(PREFIXES) + s[0].lower() + s[1:]
        if rng.random() < 0.3:
            s += rng.choice((" en ", " sobre todo en ", ", pensando en ")) + rng.choice(
                COMUNAS_WORDS
            )
        elif rng.random() < 0.3:
            s += rng.choice(SUFFIXES)
        if rng.random() < 0.35:
            s += rng.choice((" porque ", ", ya que ", ": ")) + rng.choice(BECAUSE)
        s = s.replace(" a el ", " al ").replace(" de el ", " del ")
        if rng.random() < 0.25:
            s = strip_accents(s)
        if rng.random() < 0.3:
            s = s.lower()
        if rng.random() < 0.08 and len(s) > 10:  # a typo: two letters swapped
            i = rng.randrange(1, len(s) - 2)
            s = s[:i] + s[i + 1] + s[i] + s[i + 2 :]
        if rng.random() >= 0.8:
            return s, None
        if usual in self.systems and rng.random() < 0.7:
            return s, usual
        return s, rng.choice(self.systems)


def labelled_changes(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` generated desirable changes and the topic of each (for measuring themes)."""
    rng = random.Random(seed)
    topics = list(TOPICS)
    weights = [TOPICS[t][1] for t in topics]
    bank = TextBank(rng, ["-"])
    texts: list[str] = []
    labels: list[str] = []
    for _ in range(n):
        topic = rng.choices(topics, weights)[0]
        texts.append(bank.change(topic)[0])
        labels.append(topic)
    return texts, labels
