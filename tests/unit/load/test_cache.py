"""The manifest cache: warm runs equal cold ones, minus plaintext; anything stale misses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.load import cache as cache_module
from reconciler.load.cache import LoadCache
from reconciler.load.validate import load_desired_state
from reconciler.model.desired import DesiredState
from reconciler.sops import load_identities

REPO = Path(__file__).resolve().parents[3]
DEMO_KEY = REPO / "examples" / "demo-keys" / "age-key.txt"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DEMO_KEY))
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "manifests"


def _load(root: Path, fp: Fingerprinter, cache_dir: Path) -> tuple[DesiredState, LoadCache]:
    cache = LoadCache.open(cache_dir, fp.fingerprint("ns"))
    result = load_desired_state(root, identities=load_identities(), fingerprint=fp, cache=cache)
    assert result.state is not None, [d.format() for d in result.diagnostics]
    return result.state, cache


def _secrets(state: DesiredState) -> list[tuple[str, str | None, bool]]:
    out = []
    for obj in (*state.integrations, *state.webhooks):
        for name in ("api_key", "api_secret", "signing_secret", "auth_token", "auth_password"):
            secret = getattr(obj, name, None)
            if secret is not None:
                out.append((f"{obj.source.path}:{name}", secret.fingerprint, secret.value is None))
    return out


def test_warm_run_equals_cold_run_without_plaintext(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    cold, cache = _load(tree, fp, tmp_path / "c")
    assert cache.path.exists() and len(cache.entries) == 9
    warm, _ = _load(tree, fp, tmp_path / "c")
    assert [(n, f) for n, f, _ in _secrets(warm)] == [(n, f) for n, f, _ in _secrets(cold)]
    assert all(hidden for _, _, hidden in _secrets(warm))
    assert not any(hidden for _, _, hidden in _secrets(cold))
    strip = lambda s: (len(s.integrations), len(s.webhooks), s.oauth_accounts, s.tenants)  # noqa: E731
    assert strip(warm) == strip(cold) and warm.manifests_digest == cold.manifests_digest
    # Nothing secret is written: only fingerprints.
    blob = cache.path.read_bytes()
    for obj in cold.integrations:
        if obj.api_key is not None and obj.api_key.value is not None:
            assert obj.api_key.value.reveal().encode() not in blob


def test_changed_file_misses_alone(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    _load(tree, fp, tmp_path / "c")
    target = tree / "tenants" / "initech-health" / "stripe.yaml"
    target.write_text(target.read_text().replace("interval_minutes: 60", "interval_minutes: 61"))
    warm, _ = _load(tree, fp, tmp_path / "c")
    fresh = [n for n, _, hidden in _secrets(warm) if not hidden]
    assert fresh and all(
        n.startswith("manifests/tenants/initech-health/stripe.yaml") for n in fresh
    )


def test_new_code_or_another_key_or_a_forged_file_misses(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp = Fingerprinter(b"k" * 32)
    _, cache = _load(tree, fp, tmp_path / "c")
    other, other_cache = _load(tree, Fingerprinter(b"o" * 32), tmp_path / "c")
    assert other_cache.path != cache.path and not any(h for _, _, h in _secrets(other))

    blob = bytearray(cache.path.read_bytes())
    blob[-10] ^= 1  # one flipped bit: the tag no longer matches, the file is ignored
    cache.path.write_bytes(bytes(blob))
    forged, _ = _load(tree, fp, tmp_path / "c")
    assert not any(hidden for _, _, hidden in _secrets(forged))

    _load(tree, fp, tmp_path / "c")  # warm again
    monkeypatch.setattr(cache_module, "code_fingerprint", lambda: b"another release")
    upgraded, _ = _load(tree, fp, tmp_path / "c")
    assert not any(hidden for _, _, hidden in _secrets(upgraded))


def test_files_with_warnings_are_not_cached(tree: Path, tmp_path: Path) -> None:
    target = tree / "tenants" / "initech-health" / "quickbooks.yaml"
    text = target.read_text()
    assert "interval_minutes: 15" in text
    target.write_text(text.replace("interval_minutes: 15", "interval_minutes: 2", 1))
    fp = Fingerprinter(b"k" * 32)
    for _ in range(2):  # the warning is reported on the warm run too
        cache = LoadCache.open(tmp_path / "c", fp.fingerprint("ns"))
        result = load_desired_state(tree, identities=load_identities(), fingerprint=fp, cache=cache)
        assert [d.code for d in result.diagnostics] == ["RCN-SYNC-2"]
    assert "tenants/initech-health/quickbooks.yaml" not in cache.entries
    assert "tenants/initech-health/stripe.yaml" in cache.entries


def test_entries_of_deleted_files_are_dropped(tree: Path, tmp_path: Path) -> None:
    fp = Fingerprinter(b"k" * 32)
    _load(tree, fp, tmp_path / "c")
    (tree / "tenants" / "initech-health" / "quickbooks.yaml").unlink()
    _, cache = _load(tree, fp, tmp_path / "c")
    reopened = LoadCache.open(tmp_path / "c", fp.fingerprint("ns"))
    assert "tenants/initech-health/quickbooks.yaml" not in reopened.entries
    assert len(reopened.entries) == len(cache.entries) == 8
