"""Rules that compare files with each other (run in the calling process, after every
chunk is back)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from reconciler.diagnostics import Diagnostics
from reconciler.load import manifests as mf
from reconciler.load.analyze import analyze_file
from reconciler.load.file_types import (
    AppEndpoint,
    FileJob,
    TemplateSet,
)
from reconciler.load.findings import Finding, show
from reconciler.load.platforms import rules_for
from reconciler.load.positions import locate_finding
from reconciler.model.enums import Platform
from reconciler.model.fields import ENDPOINT_URL


def check_app_endpoints(
    endpoints: Sequence[tuple[AppEndpoint, str, str]],
    templates: TemplateSet,
    root: Path,
    prefix: str,
    diagnostics: Diagnostics,
) -> None:
    """RCN-WH-10: tenants sharing a HubSpot or Intuit app declare one inbound endpoint.

    ``endpoints`` are ``(endpoint, rel, display)``. Files are re-read only to place the
    diagnostics of the few that disagree.
    """
    groups: dict[tuple[Platform, str, str], list[tuple[AppEndpoint, str, str]]] = defaultdict(list)
    for item in endpoints:
        endpoint = item[0]
        groups[(endpoint.platform, endpoint.app_id, endpoint.environment)].append(item)
    for (platform, app, env_name), members in groups.items():
        counts = Counter(e.url for e, _, _ in members)
        if len(counts) < 2:
            continue
        canonical = max(
            counts,
            key=lambda url: (
                counts[url],
                -min(i for i, (e, _, _) in enumerate(members) if e.url == url),
            ),
        )
        witness = next(d for e, _, d in members if e.url == canonical)
        kind = rules_for(platform).app_kind
        for endpoint, rel, display in members:
            if endpoint.url == canonical:
                continue
            finding = Finding(
                "RCN-WH-10",
                f"inbound {platform.value.title()} webhooks belong to the app, not the tenant: "
                f"{kind} {app} ({env_name}) delivers to {show(canonical)} as declared in "
                f"{witness}; every tenant of the app must declare the same "
                f"{ENDPOINT_URL.manifest}",
                endpoint.path,
            )
            data = mf.read_file(root / rel)
            tenant = rel.removeprefix("tenants/").partition("/")[0]
            job = FileJob(rel, display, data, tenant, platform)
            result = analyze_file(job, templates)
            chain = [templates.templates[n] for n in result.chain]
            diagnostics.add(locate_finding(finding, (display, data, result.document), chain))
