from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from reconciler.crypto.keyring import KEYRING_ENV, KEYRING_FILE_ENV, MAX_VERSION, Keyring
from reconciler.errors import ConfigError, KeyUnavailable


def _b64(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def test_parse_inline_highest_version_is_active() -> None:
    ring = Keyring.parse(f"1:{_b64()}, 3:{_b64()},2:{_b64()}", source="$X")
    assert ring.versions == (1, 2, 3)
    assert ring.active_version == 3
    assert 2 in ring and 4 not in ring


def test_file_with_comments_lines_and_commas(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    path.write_text(f"# production keyring\n1:{_b64()}  # retired soon\n\n2:{_b64()},3:{_b64()}\n")
    ring = Keyring.from_environ({KEYRING_FILE_ENV: str(path)})
    assert ring is not None and ring.versions == (1, 2, 3)


def test_unset_is_none() -> None:
    assert Keyring.from_environ({}) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{k}", "entry 1 is not VERSION:BASE64"),
        ("x:{k}", "entry 1 has a version that is not an integer"),
        ("0:{k}", "versions start at 1"),
        ("1:{k},2:{short}", "entry 2 (version 2) decodes to 16 bytes"),
        ("1:{k},1:{k}", "entry 2 repeats key version 1"),
        ("1:{bad}", "entry 1 (version 1) is not valid base64"),
        ("  ,  ", "no entries"),
        ("-1:{k}", "entry 1 has version -1; versions start at 1"),
        ("1_0:{k}", "entry 1 has a version that is not an integer"),
        ("\u0661:{k}", "entry 1 has a version that is not an integer"),  # Arabic-Indic 1
        ("2147483648:{k}", "entry 1 has version 2147483648, above 2147483647, the highest"),
        ("99999999999999999999999999:{k}", "entry 1 has a version above 2147483647"),
        ("1:{long}", "entry 1 (version 1) decodes to 48 bytes, expected 32"),
        ("1:", "entry 1 (version 1) decodes to 0 bytes"),
        ("1:{k}\n2:{k}\n2:{k}", "entry 3 repeats key version 2"),
    ],
)
def test_bad_keyrings_name_the_entry_but_no_key_material(text: str, fragment: str) -> None:
    key, short, long = _b64(), _b64(16), _b64(48)
    bad = key[:-4] + "!!!!"
    rendered = text.format(k=key, short=short, bad=bad, long=long)
    with pytest.raises(ConfigError) as info:
        Keyring.parse(rendered, source=f"${KEYRING_ENV}")
    message = str(info.value)
    assert fragment in message
    assert KEYRING_ENV in message and "\n" not in message
    for secret in (key, short, long, bad, key[:12], short[:12], long[:12]):
        assert secret not in message


def test_highest_storable_version_is_accepted() -> None:
    ring = Keyring.parse(f"2147483647:{_b64()}", source="$X")
    assert ring.active_version == MAX_VERSION == 2**31 - 1


@pytest.mark.parametrize("version", [0, -1, 2**31, 2**63])
def test_versions_outside_the_column_are_refused_everywhere(version: int) -> None:
    with pytest.raises(ConfigError, match=r"versions start at 1|above 2147483647"):
        Keyring({version: os.urandom(32)})
    with pytest.raises(ConfigError, match=r"versions start at 1|above 2147483647"):
        Keyring.generate_entry(version)


def test_both_sources_set_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only one"):
        Keyring.from_environ({KEYRING_ENV: f"1:{_b64()}", KEYRING_FILE_ENV: str(tmp_path)})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Keyring.from_environ({KEYRING_FILE_ENV: str(tmp_path / "missing")})


def test_unknown_version_names_version_and_place() -> None:
    ring = Keyring.parse(f"1:{_b64()}", source="$X")
    with pytest.raises(KeyUnavailable, match=r"key version 7 .*integration_configs\.api_key"):
        ring.key(7, where="integration_configs.api_key tenant=acme row=1")


def test_generate_entry_round_trips_and_is_random() -> None:
    first, second = Keyring.generate_entry(2), Keyring.generate_entry(2)
    assert first != second
    assert first.startswith("2:")
    assert Keyring.parse(first, source="gen").versions == (2,)
    with pytest.raises(ConfigError):
        Keyring.generate_entry(0)


def test_repr_and_to_text() -> None:
    entry = Keyring.generate_entry(1)
    ring = Keyring.parse(entry, source="$X")
    assert entry.split(":")[1] not in repr(ring)
    assert ring.to_text() == entry
