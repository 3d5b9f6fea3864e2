"""A diagnostic is one line in every format, whatever text the input or a parser put in it."""

from __future__ import annotations

import json

from reconciler.diagnostics import Diagnostic, Diagnostics, DiagnosticsReport
from reconciler.render.diagnostics import RENDERERS


def test_multi_line_messages_and_control_characters_in_paths_stay_on_one_line() -> None:
    d = Diagnostic(
        "RCN-Y001",
        'unacceptable character #x0000\n  in "<unicode string>", position 0',
        file="manifests/tenants/a\nb/stripe.yaml",
        line=1,
        column=1,
        path="webhooks.x\n::error::forged",
    )
    assert d.message == 'unacceptable character #x0000 in "<unicode string>", position 0'
    assert d.format().count("\n") == 0
    assert "::error::forged" in d.format() and "\\n::error" in d.format()
    report = DiagnosticsReport((d,), 1, (), not Diagnostics([d]).has_errors(strict=False))
    for name, render in RENDERERS.items():
        lines = render(report).splitlines()
        assert not any(line.startswith("::error::forged") for line in lines), name
    assert json.loads(RENDERERS["json"](report))["diagnostics"][0]["path"].startswith("webhooks")
