"""Text of ``reconciler keys status``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from reconciler.render.table import format_table
from reconciler.store.rotate import KeyUsage, LegacyUsage


class KeyStatusView(Protocol):
    """What :func:`render_key_status` reads (``reconciler.commands.keys.KeyStatus``)."""

    @property
    def database(self) -> str: ...
    @property
    def tables(self) -> tuple[str, ...]: ...
    @property
    def usage(self) -> Sequence[KeyUsage]: ...
    @property
    def legacy(self) -> Sequence[LegacyUsage]: ...
    @property
    def versions(self) -> tuple[int, ...]: ...
    @property
    def active_version(self) -> int | None: ...
    @property
    def problem(self) -> str: ...
    @property
    def stale_rows(self) -> int: ...
    @property
    def legacy_values(self) -> int: ...


def render_key_status(status: KeyStatusView) -> str:
    """Rows per key version per table, the keyring, and what to do next."""
    active = status.active_version
    lines = [status.database]
    if active is None:
        lines.append(f"keyring: not available ({status.problem})")
    else:
        listed = ", ".join(map(str, status.versions))
        lines.append(f"keyring: versions {listed}; active (encrypts): {active}")
    lines.append("")
    rows: list[tuple[object, ...]] = []
    for table in status.tables:
        found = [u for u in status.usage if u.table == table]
        if not found:
            rows.append((table, "-", 0, ""))
        for item in found:
            rows.append((table, item.version, item.rows, _note(item.version, status)))
        for old in status.legacy:
            if old.table == table and old.rows:
                rows.append(
                    (f"{old.table}.{old.column}", "legacy", old.rows, "not in the managed format")
                )
    lines.append(format_table(("TABLE", "KEY VERSION", "ROWS", ""), rows))
    if active is not None:
        lines.append("")
        if status.stale_rows:
            lines.append(
                f"{status.stale_rows} row(s) not under the active key: "
                "run `reconciler keys rotate`."
            )
        elif not status.legacy_values:
            lines.append("Every stored secret is under the active key.")
        else:
            lines.append("Every managed secret is under the active key.")
    if status.legacy_values:
        lines.append(
            f"{status.legacy_values} legacy OAuth token value(s) written before adoption (not "
            "rcn1): `reconciler keys adopt-tokens --from LAYOUT` brings them in."
        )
    return "\n".join(lines) + "\n"


def _note(version: int | None, status: KeyStatusView) -> str:
    if status.active_version is None:
        return ""
    if version is None or version not in status.versions:
        return "NOT IN KEYRING"
    return "active" if version == status.active_version else "needs rotation"
