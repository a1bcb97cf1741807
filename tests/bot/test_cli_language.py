"""The words Typer prints itself in `consulta` are Spanish, through the gettext catalogue of
bot/cli/locale (bot.cli.translations)."""

from __future__ import annotations

import gettext
import io
import os
import subprocess
import sys

from bot.cli import translations


def test_the_compiled_catalogue_is_the_source_compiled() -> None:
    source = translations.parse(translations.PO.read_text(encoding="utf-8"))
    assert translations.MO.read_bytes() == translations.compile_mo(source), (
        "run: python -m bot.cli.translations"
    )


def test_gettext_reads_the_compiled_catalogue() -> None:
    catalogue = gettext.GNUTranslations(io.BytesIO(translations.MO.read_bytes()))
    assert catalogue.gettext("Options") == "Opciones"
    assert catalogue.gettext("[required]") == "[obligatorio]"
    assert catalogue.gettext("not in the catalogue") == "not in the catalogue"


def test_every_entry_is_translated_and_keeps_its_placeholders() -> None:
    source = translations.parse(translations.PO.read_text(encoding="utf-8"))
    for msgid, forms in source.items():
        if msgid:
            assert all(forms), msgid
            for form in forms:
                for placeholder in ("{}", "{default}", "{var}", "{name!r}", "{command_path}"):
                    assert (placeholder in msgid) == (placeholder in form), (msgid, form)


def consulta(*args: str) -> str:
    """What ``consulta args`` prints, on a machine that asks for English."""
    env = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LANG")}
    env["LANGUAGE"] = "en"  # whatever the machine says, the command line is Spanish
    done = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    return done.stdout + done.stderr


def test_the_help_and_errors_of_consulta_speak_spanish() -> None:
    shown = consulta("check", "--help")
    for spanish in ("Argumentos", "Opciones", "[obligatorio]", "[por omisión: no-diagram]"):
        assert spanish in shown
    for english in ("Arguments", "Options ", "[required]", "[default:", "--install-completion"):
        assert english not in shown
    assert "No existe el comando 'nope'" in consulta("nope")


def test_the_usage_line_the_help_option_and_suggestions_speak_spanish() -> None:
    """The words Typer's bundled Click prints without gettext (bot.cli.spanish)."""
    top, check = consulta("--help"), consulta("check", "--help")
    for shown in (top, consulta("invite", "--help"), check):
        assert "Uso: consulta" in shown and "[OPCIONES]" in shown
        assert "Muestra esta ayuda y termina." in shown
        for english in ("Usage:", "[OPTIONS]", "COMMAND [ARGS]", "Show this message"):
            assert english not in shown
    assert "COMANDO [ARGUMENTOS]..." in top
    assert "ARCHIVO" in check
    wrong = consulta("invitar")
    assert "No existe el comando 'invitar'. ¿Quiso decir 'invite'?" in wrong
    assert "Did you mean" not in wrong and "Uso: consulta [OPCIONES]" in wrong
    assert "¿Quiso decir" not in consulta("nada")  # nothing close: no suggestion
