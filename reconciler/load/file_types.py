"""What one manifest file is as a unit of work: its input (:class:`FileJob`), the
templates it may merge (:class:`TemplateSet`) and what analysing it produced
(:class:`FileResult`). All picklable, so files can be analysed in worker processes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.diagnostics import Diagnostic
from reconciler.load import manifests as mf
from reconciler.model.enums import Platform

if TYPE_CHECKING:
    from reconciler.load.manifest_model import PlatformConfig

Fingerprint = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template file. ``doc`` is ``None`` when the file itself is broken."""

    name: str
    rel: str
    display: str
    data: bytes
    doc: dict[str, Any] | None
    platform: str | None
    parent: str | None
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """Every template under the root, by name (read once per run, shared by all files)."""

    templates: Mapping[str, Template]
    _chains: dict[str, tuple[tuple[str, ...], str | None, str | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Resolved chains by template name: resolved once per run, not once per file."""

    def chain(self, name: str) -> tuple[list[str], str | None, str | None]:
        """``(chain, rule id, message)`` for a template name; rule id ``None`` when fine."""
        known = self._chains.get(name)
        if known is None:
            known = self._chains[name] = self._resolve(name)
        names, code, problem = known
        return list(names), code, problem

    def _resolve(self, name: str) -> tuple[tuple[str, ...], str | None, str | None]:
        parents = {n: t.parent for n, t in self.templates.items()}
        chain, problem = mf.resolve_chain(name, parents, self.templates)
        if problem is None:
            return tuple(chain), None, None
        return tuple(chain), ("RCN-TPL-2" if "cyclic" in problem else "RCN-TPL-1"), problem


@dataclass(frozen=True, slots=True)
class FileJob:
    """Input of :func:`analyze_file`: one tenant manifest, already read."""

    rel: str
    display: str
    data: bytes
    tenant: str
    platform: Platform


@dataclass(frozen=True, slots=True)
class AppEndpoint:
    """An inbound endpoint of an app-level webhook (HubSpot app / Intuit app)."""

    platform: Platform
    app_id: str
    environment: str
    url: str
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class FileResult:
    """Output of :func:`analyze_file`.

    Attributes:
        config: the validated (still encrypted) manifest, ``None`` if it did not validate.
        document: the file's own parsed document (input to decryption), ``None`` if unreadable.
        chain: templates merged under the file, nearest first.
        secrets: ``(path, provider)`` of each secret field; provider is the template name
            that supplies it, ``None`` for the file itself.
        endpoints: app-level inbound endpoints for the cross-file rule.
    """

    rel: str
    display: str
    diagnostics: tuple[Diagnostic, ...]
    config: PlatformConfig | None = None
    document: Any = None
    chain: tuple[str, ...] = ()
    secrets: tuple[tuple[tuple[str | int, ...], str | None], ...] = ()
    endpoints: tuple[AppEndpoint, ...] = ()
