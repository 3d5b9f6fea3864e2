"""CLI commands: ``reconciler secrets keygen|encrypt|decrypt|edit|updatekeys|rotate``.

They behave like their ``sops`` namesakes on SOPS files with age recipients, and run
in-process (no ``sops`` binary needed). Files are written atomically with their permissions
kept; on any error nothing is written.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli.exit_codes import ExitCode
from reconciler.cli.options import handle_errors, output_options, quiet_requested
from reconciler.errors import ConfigError
from reconciler.files import atomic_write
from reconciler.progress import Progress
from reconciler.sops import (
    EditSession,
    EncryptionRules,
    batch,
    decrypt_file,
    detect_format,
    dump,
    encrypt_file,
    generate_key,
)
from reconciler.sops.batch import expand
from reconciler.sops.codec import to_bytes
from reconciler.sops.encryption_rules import RULE_KINDS
from reconciler.sops.scratch import PlaintextFile

_TYPES = click.Choice(["yaml", "json"])
_TYPE_OPTIONS = (
    click.option("--input-type", type=_TYPES, help="Default: from the file extension."),
    click.option("--output-type", type=_TYPES, help="Default: the input type."),
)


def _type_options(func: Any) -> Any:
    """``--input-type`` and ``--output-type`` (yaml or json), as on sops."""
    for option in reversed(_TYPE_OPTIONS):
        func = option(func)
    return func


_EXTRACT_STEP = re.compile(r'\[(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|(-?[0-9]+))\]')


@click.group("secrets")
def secrets() -> None:
    """Encrypt, decrypt and edit SOPS files with age keys (compatible with sops).

    \b
    Identities for decryption: $SOPS_AGE_KEY, $SOPS_AGE_KEY_FILE, and
    $XDG_CONFIG_HOME/sops/age/keys.txt (default ~/.config/sops/age/keys.txt).
    Recipients for new files: --age, else the first matching creation rule of the
    nearest .sops.yaml above the file.
    """


@secrets.command("keygen")
@output_options()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the key to FILE (created 0600; never overwritten) instead of stdout.",
)
@handle_errors
def keygen(output: Path | None) -> None:
    """Generate an age identity (like age-keygen).

    \b
    Examples:
      reconciler secrets keygen -o ~/.config/sops/age/keys.txt
      reconciler secrets keygen > key.txt && grep public key.txt
    """
    key = generate_key()
    if output is None:
        click.echo(key.text, nl=False)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{output}: already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"{output}: cannot create: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key.text)
    if not quiet_requested():
        click.echo(f"Public key: {key.public_key}", err=True)


@secrets.command("encrypt")
@output_options()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-i", "--in-place", is_flag=True, help="Write the result back to FILE.")
@click.option("--age", "age", metavar="RECIPIENTS", help="Comma-separated age recipients.")
@click.option("--encrypted-regex", metavar="RE", help="Encrypt only keys matching RE.")
@click.option("--unencrypted-regex", metavar="RE", help="Leave keys matching RE in clear.")
@click.option("--encrypted-suffix", metavar="S", help="Encrypt only keys ending in S.")
@click.option("--unencrypted-suffix", metavar="S", help="Leave keys ending in S in clear.")
@_type_options
@handle_errors
def encrypt(
    file: Path,
    in_place: bool,
    age: str | None,
    input_type: str | None,
    output_type: str | None,
    **rule_options: str | None,
) -> None:
    """Encrypt FILE and print it (or write it back with -i).

    An already encrypted FILE is encrypted again with its own key: values added or changed
    in clear are encrypted, unchanged values keep their ciphertext.

    \b
    Examples:
      reconciler secrets encrypt -i manifests/tenants/acme/stripe.yaml
      reconciler secrets encrypt --age age1... --encrypted-regex '^(password|token)$' in.yaml
    """
    given = {kind: value for kind, value in rule_options.items() if value}
    if len(given) > 1:
        raise ConfigError(
            "give at most one of --" + ", --".join(k.replace("_", "-") for k in given)
        )
    rules = None
    if given:
        [(name, value)] = given.items()
        kind = next(k for k in RULE_KINDS if k == name)
        rules = EncryptionRules.build(kind, value, source=f"--{name.replace('_', '-')}")
    text = encrypt_file(
        file, recipients=age, rules=rules, input_format=input_type, output_format=output_type
    )
    _emit(file, text, in_place)


@secrets.command("decrypt")
@output_options()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-i", "--in-place", is_flag=True, help="Write the plaintext back to FILE.")
@click.option("--extract", metavar="PATH", help='Print one value, e.g. \'["db"]["password"]\'.')
@_type_options
@handle_errors
def decrypt(
    file: Path,
    in_place: bool,
    extract: str | None,
    input_type: str | None,
    output_type: str | None,
) -> None:
    """Decrypt FILE (MAC verified) and print it (or write it back with -i).

    \b
    Examples:
      reconciler secrets decrypt manifests/tenants/acme/stripe.yaml
      reconciler secrets decrypt --extract '["db"]["password"]' secrets.yaml
    """
    if in_place and extract:
        raise ConfigError("--extract cannot be combined with --in-place")
    decrypted = decrypt_file(file, input_format=input_type)
    fmt = detect_format(file, output_type or decrypted.format)
    if extract is None:
        _emit(file, dump(decrypted.documents, fmt, source=str(file)), in_place)
        return
    value = _extract(decrypted.documents[0], extract, source=str(file))
    if isinstance(value, dict | list):
        click.echo(dump([value], "json" if fmt == "json" else "yaml", source=str(file)), nl=False)
    elif value is None:
        click.echo("null", nl=False)
    else:
        click.echo(to_bytes(value).decode("utf-8", errors="replace"), nl=False)


@secrets.command("edit")
@output_options()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def edit(file: Path) -> None:
    """Edit FILE decrypted in $SOPS_EDITOR, $EDITOR or vi, then encrypt it again.

    The plaintext lives in a private directory (0700; the file 0600) in $XDG_RUNTIME_DIR or
    /dev/shm when available (memory, not disk), removed afterwards and on SIGTERM, SIGHUP
    and Ctrl-C; leftovers of a killed edit are removed by the next one. Unchanged values
    keep their ciphertext; nothing is written when nothing changed.

    \b
    Examples:
      reconciler secrets edit manifests/tenants/acme/stripe.yaml
      SOPS_EDITOR="code --wait" reconciler secrets edit stripe.yaml
    """
    session = EditSession.open(file)
    with PlaintextFile.open(file.name, session.plaintext) as plain:
        while True:
            _run_editor(plain)
            edited = plain.path.read_text(encoding="utf-8")
            if edited == session.plaintext:
                if not quiet_requested():
                    click.echo(f"{file}: not changed; nothing written.", err=True)
                return
            try:
                text = session.seal(edited)
                break
            except ConfigError as exc:
                click.echo(f"Error: {exc}", err=True)
                if not click.confirm("Return to the editor?", default=True, err=True):
                    raise ConfigError(f"{file}: edit aborted; nothing written") from None
        atomic_write(file, text)
        if not quiet_requested():
            click.echo(f"{file}: saved.", err=True)


@secrets.command("updatekeys")
@output_options()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: CPUs).")
@handle_errors
def updatekeys(paths: tuple[Path, ...], yes: bool, quiet: bool, jobs: int | None) -> None:
    """Re-wrap each file's data key to the recipients of its .sops.yaml creation rule.

    PATHS are files or directories (searched for SOPS files: .yaml, .yml and .json files with
    a sops block). Values, comments and the MAC are unchanged. Without -y the changes are
    listed and confirmed once for all files.

    \b
    Examples:
      reconciler secrets updatekeys manifests/tenants/acme/stripe.yaml
      reconciler secrets updatekeys -y manifests/         # after editing .sops.yaml
    """
    files = expand(paths)
    progress = Progress(enabled=not quiet)
    results = batch.run(files, "updatekeys", write=yes, workers=jobs, progress=progress)
    pending = [r for r in results if r.status == "pending"]
    if pending:
        for result in pending:
            click.echo(f"The following changes will be made to {result.path}:", err=True)
            for recipient in result.added:
                click.echo(f"+++ {recipient}", err=True)
            for recipient in result.removed:
                click.echo(f"--- {recipient}", err=True)
        if not click.confirm("Is this okay?", default=False, err=True):
            click.echo("Changes not applied.", err=True)
            _finish(results)
            return
        for result in pending:
            assert result.text is not None
            atomic_write(result.path, result.text)
            if not quiet:
                click.echo(f"{result.path}: keys updated.", err=True)
    for result in [] if quiet else results:
        if result.status == "updated":
            click.echo(f"{result.path}: keys updated.", err=True)
        elif result.status == "unchanged":
            click.echo(f"{result.path}: recipients already up to date; nothing written.", err=True)
    _finish(results)


@secrets.command("rotate")
@output_options()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: CPUs).")
@handle_errors
def rotate(paths: tuple[Path, ...], quiet: bool, jobs: int | None) -> None:
    """Give each file a new data key, like `sops rotate -i`.

    Every encrypted value is encrypted again under a new random data key, wrapped for the
    file's same recipients, and the MAC is recomputed. Clear values, comments and layout stay.
    PATHS are files or directories (searched for SOPS files). Files are written in place,
    each atomically; a file that cannot be opened is reported and left as it was.

    \b
    Examples:
      reconciler secrets rotate manifests/tenants/acme/stripe.yaml
      reconciler secrets rotate --jobs 4 manifests/
    """
    files = expand(paths)
    progress = Progress(enabled=not quiet)
    results = batch.run(files, "rotate", workers=jobs, progress=progress)
    if len(results) <= 20 and not quiet:
        for result in results:
            if result.status == "rotated":
                click.echo(f"{result.path}: data key rotated.", err=True)
    _finish(results)


def _finish(results: list[batch.FileResult]) -> None:
    """Print each failure; exit 1 when any file failed."""
    failed = [r for r in results if r.status == "failed"]
    for result in failed:
        click.echo(f"Error: {result.error}", err=True)
    if failed:
        click.echo(
            f"{len(failed)} of {len(results)} file(s) failed; they were not changed.", err=True
        )
        sys.exit(ExitCode.ERROR)


def _emit(file: Path, text: str, in_place: bool) -> None:
    if in_place:
        if text.encode("utf-8") == file.read_bytes():
            click.echo(f"{file}: nothing to change; nothing written.", err=True)
            return
        atomic_write(file, text)
    else:
        click.echo(text, nl=False)


def _extract(document: Any, path: str, *, source: str) -> Any:
    """Follow a sops ``--extract`` path such as ``["a"]["b"][0]``."""
    steps: list[str | int] = []
    position = 0
    for match in _EXTRACT_STEP.finditer(path):
        if match.start() != position:
            break
        position = match.end()
        double, single, index = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(re.sub(r"\\(.)", r"\1", double if double is not None else single))
    if position != len(path) or not steps:
        raise ConfigError(f"invalid --extract path {path!r}; expected e.g. '[\"key\"][0]'")
    node = document
    for step in steps:
        in_mapping = isinstance(node, dict) and isinstance(step, str) and step in node
        in_list = (
            isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node)
        )
        if not (in_mapping or in_list):
            raise ConfigError(f"{source}: {path} not found")
        node = node[step]
    return node


def _run_editor(plain: PlaintextFile) -> None:
    command = os.environ.get("SOPS_EDITOR") or os.environ.get("EDITOR") or "vi"
    argv = shlex.split(command)
    try:
        status = plain.run(argv)
    except OSError as exc:
        raise ConfigError(f"cannot run the editor {argv[0]!r}: {exc.strerror}") from None
    if status != 0:
        raise ConfigError(f"the editor exited with status {status}; nothing written")


def register(group: click.Group) -> None:
    """Add this module's commands to the root group."""
    group.add_command(secrets)
