"""``.sops.yaml`` creation rules: which recipients and selection rule a new file gets.

As sops does (``config/config.go``): the configuration is the nearest ``.sops.yaml`` (or
``.sops.yml``) found by searching upward from the directory of the file being encrypted. Its
``creation_rules`` are tried in order; the first whose ``path_regex`` matches wins (a rule
without ``path_regex`` matches everything). The regex is searched in the file's path relative
to the configuration's directory, with ``/`` separators; a file outside that directory is
matched by its absolute path.

Supported rule keys: ``path_regex``, ``age`` (a comma-separated string or a list),
``key_groups`` with a single group of ``age`` keys, one of ``encrypted_regex`` /
``unencrypted_regex`` / ``encrypted_suffix`` / ``unencrypted_suffix``, and
``mac_only_encrypted``. Rules that need other key types or several key groups are refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from reconciler.errors import ConfigError
from reconciler.files import read_file
from reconciler.sops.age import split_recipients
from reconciler.sops.encryption_rules import EncryptionRules
from reconciler.yaml_source import YamlError, parse_document

CONFIG_NAMES: Final = (".sops.yaml", ".sops.yml")
_MAX_DEPTH: Final = 100
_OTHER_KEYS: Final = ("pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms")


@dataclass(frozen=True, slots=True)
class CreationRule:
    """The creation rule that applies to one file.

    Attributes:
        config: the ``.sops.yaml`` it came from.
        index: its position in ``creation_rules`` (0-based).
        recipients: the age recipients new files are encrypted to.
        rules: the selection rule and ``mac_only_encrypted``.
    """

    config: Path
    index: int
    recipients: tuple[str, ...]
    rules: EncryptionRules


def find_config(start: str | os.PathLike[str]) -> Path | None:
    """The nearest ``.sops.yaml`` in ``start`` (a directory) or any of its parents."""
    directory = Path(os.path.abspath(start))
    for _ in range(_MAX_DEPTH):
        for name in CONFIG_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        if directory.parent == directory:
            return None
        directory = directory.parent
    return None


def relative_match_path(file_path: str | os.PathLike[str], config: Path) -> str:
    """The path ``path_regex`` is matched against (see the module docstring)."""
    absolute = os.path.abspath(file_path)
    base = os.path.dirname(os.path.abspath(config)) + os.sep
    if absolute.startswith(base):
        absolute = absolute[len(base) :]
    return absolute.replace(os.sep, "/")


def load_creation_rule(file_path: str | os.PathLike[str], config: Path) -> CreationRule:
    """The first creation rule of ``config`` that matches ``file_path``.

    Raises:
        ConfigError: the config is invalid, no rule matches, or the rule is unsupported.
    """
    return RuleCache().rule_for(file_path, config)


class RuleCache:
    """Creation rules for many files in one pass (``secrets updatekeys`` over a repository).

    Each directory's nearest ``.sops.yaml`` is looked up once, each config is read and parsed
    once, and each rule's recipients are checked once, instead of once per file. Only for the
    duration of one batch: a ``.sops.yaml`` edited afterwards is read again by the next one.
    Errors are not cached (every file whose rule is invalid reports it).
    """

    def __init__(self) -> None:
        self._configs: dict[str, Path | None] = {}
        self._rules: dict[Path, list[Any]] = {}
        self._built: dict[tuple[Path, int], CreationRule] = {}

    def find_config(self, start: str | os.PathLike[str]) -> Path | None:
        """:func:`find_config`, remembered per directory."""
        key = os.path.abspath(start)
        if key not in self._configs:
            self._configs[key] = find_config(key)
        return self._configs[key]

    def rule_for(self, file_path: str | os.PathLike[str], config: Path) -> CreationRule:
        """:func:`load_creation_rule`, reading and checking ``config`` once."""
        rules = self._rules.get(config)
        if rules is None:
            rules = _read_rules(config)
            self._rules[config] = rules
        source = str(config)
        target = relative_match_path(file_path, config)
        for index, rule in enumerate(rules):
            where = f"{source}: creation_rules[{index}]"
            if not isinstance(rule, Mapping):
                raise ConfigError(f"{where} must be a mapping")
            pattern = rule.get("path_regex")
            if pattern not in (None, ""):
                try:
                    matched = re.search(str(pattern), target) is not None
                except re.error as exc:
                    raise ConfigError(f"{where}: invalid path_regex: {exc}") from None
                if not matched:
                    continue
            built = self._built.get((config, index))
            if built is None:
                built = CreationRule(
                    config, index, _rule_recipients(rule, where), _rule_rules(rule, where)
                )
                self._built[(config, index)] = built
            return built
        raise ConfigError(f"{source}: no creation rule matches {target}")


def _read_rules(config: Path) -> list[Any]:
    """The ``creation_rules`` list of ``config``."""
    source = str(config)
    try:
        # .sops.yaml is repository content: a link, FIFO or huge file is refused, not read.
        document = parse_document(read_file(config))
    except (OSError, YamlError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    rules = document.get("creation_rules") if isinstance(document, Mapping) else None
    if not isinstance(rules, list) or not rules:
        raise ConfigError(f"{source}: no creation_rules")
    return rules


def _rule_recipients(rule: Mapping[str, Any], where: str) -> tuple[str, ...]:
    for name in _OTHER_KEYS:
        if rule.get(name):
            raise ConfigError(f"{where}: {name} keys are not supported; use age recipients")
    groups = rule.get("key_groups")
    if groups:
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], Mapping):
            raise ConfigError(
                f"{where}: several key_groups (Shamir) are not supported when encrypting; "
                "use one group or age recipients"
            )
        group = groups[0]
        for name in group:
            if name != "age" and group[name]:
                raise ConfigError(f"{where}: {name} keys are not supported; use age recipients")
        recipients = split_recipients(group.get("age"), source=where)
    else:
        recipients = split_recipients(rule.get("age"), source=where)
    if not recipients:
        raise ConfigError(f"{where}: no age recipients")
    return recipients


def _rule_rules(rule: Mapping[str, Any], where: str) -> EncryptionRules:
    return EncryptionRules.from_mapping(rule, source=where)
