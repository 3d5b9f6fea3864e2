"""Text of ``reconciler health check``."""

from __future__ import annotations

from reconciler.health.check import HealthCheckResult
from reconciler.render.table import format_table


def render_check_text(result: HealthCheckResult) -> str:
    """The result of a health check for a terminal."""
    lines: list[str] = []
    if result.integrations:
        lines.append(
            format_table(
                ("STATUS", "WAS", "INTEGRATION", "MESSAGE"),
                [
                    (i.status.value, i.previous.value, i.address, i.message)
                    for i in result.integrations
                ],
            )
        )
    else:
        lines.append("No active integrations selected.")
    verb = "would move" if result.dry_run else "moved"
    if result.transitions:
        lines.append("")
        lines.append(f"Circuits {verb} from OPEN to HALF_OPEN (reset time passed):")
        lines.extend(f"  {t.address}" for t in result.transitions)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    lines.append("")
    summary = f"{len(result.integrations)} integration(s) checked" + (
        f": {counts}" if counts else ""
    )
    summary += f"; {len(result.transitions)} circuit(s) {verb} to HALF_OPEN."
    if result.dry_run:
        summary += " Dry run: nothing written."
    lines.append(summary)
    return "\n".join(lines) + "\n"
