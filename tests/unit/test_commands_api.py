"""``reconciler.commands`` re-exports every verb, imported when first used."""

from __future__ import annotations

import subprocess
import sys

import reconciler.commands as commands


def test_every_name_of_the_api_is_exported_from_its_module() -> None:
    assert set(commands._EXPORTS) == set(commands.__all__)
    for name, module in commands._EXPORTS.items():
        value = getattr(commands, name)
        assert getattr(sys.modules[module], name) is value, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        commands.no_such_verb  # noqa: B018
    except AttributeError as exc:
        assert "no_such_verb" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_the_package_imports_no_verb() -> None:
    code = (
        "import sys, reconciler.commands\n"
        "print(sorted(m for m in sys.modules if m.startswith('reconciler.commands.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
