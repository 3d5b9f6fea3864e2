"""age key discovery, key files, recipients, wrapping and key generation."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest

from reconciler.errors import ConfigError, KeyUnavailable
from reconciler.sops import Identities, generate_key, load_identities
from reconciler.sops.age import parse_identities, split_recipients, unwrap_entries, wrap_key


def _key() -> tuple[str, str]:
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def _key_file(path: Path, *secrets: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# created: now\n\n" + "".join(f"{s}\n" for s in secrets))
    return path


def test_sources_are_read_in_sops_order(tmp_path: Path) -> None:
    (k1, r1), (k2, r2), (k3, r3), (k4, r4) = (_key() for _ in range(4))
    key_file = _key_file(tmp_path / "keys.txt", k3)
    xdg = tmp_path / "xdg"
    default = _key_file(xdg / "sops" / "age" / "keys.txt", k4)
    env = {
        "SOPS_AGE_KEY": f"# comment line\n{k1}  {k2}\n",
        "SOPS_AGE_KEY_FILE": str(key_file),
        "XDG_CONFIG_HOME": str(xdg),
        "HOME": str(tmp_path / "home"),
    }
    found = load_identities(env)
    assert [str(i.to_public()) for i in found] == [r1, r2, r3, r4]
    assert found.sources == ("SOPS_AGE_KEY", f"SOPS_AGE_KEY_FILE={key_file}", str(default))
    assert found.recipients == {r1, r2, r3, r4}
    assert str(found.for_recipient(r3)) == k3


def test_default_file_falls_back_to_home_config_without_xdg(tmp_path: Path) -> None:
    secret, public = _key()
    _key_file(tmp_path / ".config" / "sops" / "age" / "keys.txt", secret)
    found = load_identities({"HOME": str(tmp_path)})
    assert [str(i.to_public()) for i in found] == [public]
    # With XDG_CONFIG_HOME set, ~/.config is not read (Go's os.UserConfigDir).
    assert not load_identities({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "x")})


def test_nothing_found_is_empty_not_an_error(tmp_path: Path) -> None:
    found = load_identities({"HOME": str(tmp_path)})
    assert isinstance(found, Identities)
    assert len(found) == 0
    assert not found


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    secret, public = _key()
    monkeypatch.setenv("SOPS_AGE_KEY", secret)
    assert [str(i.to_public()) for i in load_identities()] == [public]


def test_unreadable_key_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(KeyUnavailable, match=f"SOPS_AGE_KEY_FILE={missing}: cannot read"):
        load_identities({"SOPS_AGE_KEY_FILE": str(missing)})


def test_malformed_key_is_reported_without_its_text() -> None:
    bad = "AGE-SECRET-KEY-1NOTAVALIDKEYATALLXXXXXXXXXXXXXXXXXXXXXXXX"
    with pytest.raises(KeyUnavailable) as info:
        load_identities({"SOPS_AGE_KEY": f"# x\n{bad}\n"})
    assert "SOPS_AGE_KEY: line 2" in str(info.value)
    assert bad not in str(info.value)


def test_unusable_identities_are_skipped_and_reported() -> None:
    secret, _ = _key()
    identities, skipped = parse_identities(f"AGE-PLUGIN-YUBIKEY-1XYZ\n{secret}\n", source="k")
    assert len(identities) == 1
    assert skipped == ["plugin identity at k:1"]


def test_recipients_split_and_refuse_unsupported_kinds() -> None:
    _, r1 = _key()
    _, r2 = _key()
    assert split_recipients(f" {r1},{r2} ,{r1}", source="s") == (r1, r2)
    assert split_recipients([r1, f"{r2},"], source="s") == (r1, r2)
    with pytest.raises(ConfigError, match=r"post-quantum age recipients \(age1pq1…\)"):
        split_recipients("age1pq1" + "q" * 60, source="s")
    with pytest.raises(ConfigError, match="only X25519 age recipients"):
        split_recipients("age1yubikey1qqqq", source="s")


def test_unwrap_prefers_the_matching_recipient_and_tries_the_rest() -> None:
    identity = pyrage.x25519.Identity.generate()
    other = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    key = bytes(range(32))
    entries = [
        {"recipient": str(other.to_public()), "enc": wrap_key(key, str(other.to_public()))},
        {"recipient": "written-differently", "enc": wrap_key(key, recipient)},
    ]
    assert unwrap_entries(entries, Identities.of([identity])) == key
    assert unwrap_entries(entries[:1], Identities.of([identity])) is None


def test_generated_key_file_reads_back() -> None:
    key = generate_key()
    lines = key.text.splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[1] == f"# public key: {key.public_key}"
    assert lines[2].startswith("AGE-SECRET-KEY-1")
    identities, _ = parse_identities(key.text, source="new")
    assert str(identities[0].to_public()) == key.public_key
