"""Loading in worker processes gives exactly the serial result.

Runs in a fresh interpreter: a fork is only used from a single-threaded process, and the
test runner itself may have threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
from pathlib import Path
import reconciler.load.pool as p
import reconciler.load.stage as v
from reconciler.sops import load_identities

pools = []


class CountingPool(p.ProcessPoolExecutor):
    def __init__(self, *args, **kwargs):
        pools.append(args)
        super().__init__(*args, **kwargs)


p.ProcessPoolExecutor = CountingPool
root = Path(sys.argv[1])
ids = load_identities()


def fp(s):
    return "fp" + str(len(s))


serial = v.load_desired_state(root, identities=ids, fingerprint=fp, workers=1)
used_before = len(pools)
parallel = v.load_desired_state(root, identities=ids, fingerprint=fp, workers=2)
print(json.dumps({
    "pool_used": used_before == 0 and len(pools) == 1,
    "same_state": serial.state == parallel.state,
    "same_digest": serial.manifests_digest == parallel.manifests_digest,
    "same_diagnostics": [d.format() for d in serial.diagnostics]
    == [d.format() for d in parallel.diagnostics],
    "files": parallel.files,
    "integrations": len(parallel.state.integrations) if parallel.state else -1,
    "secrets_decrypted": all(
        i.api_key is None or i.api_key.value is not None
        for i in (parallel.state.integrations if parallel.state else ())
    ),
}))
"""


def test_parallel_load_matches_serial() -> None:
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(REPO / "examples/demo-keys/age-key.txt")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO / "manifests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result == {
        "pool_used": True,
        "same_state": True,
        "same_digest": True,
        "same_diagnostics": True,
        "files": 13,
        "integrations": result["integrations"],
        "secrets_decrypted": True,
    }
    assert result["integrations"] > 0


def test_a_workers_files_travel_back_in_small_chunks() -> None:
    """This process keeps its own share in one chunk; each worker's share is cut into
    chunks of at most TRANSFER_FILES, each loaded and sent back alone (a worker never holds
    its whole share, nor this process one huge message), in file order."""
    from reconciler.load.pool import TRANSFER_FILES, split_chunks, transfer_chunks

    files: list[Any] = list(range(3 * TRANSFER_FILES + 5))  # stand-ins for the files
    shares = split_chunks(files, 3, busy=True)
    chunks = transfer_chunks(shares)
    assert [f for chunk in chunks for f in chunk] == files
    assert chunks[0] == shares[0]
    assert len(chunks) > len(shares)
    assert all(0 < len(chunk) <= TRANSFER_FILES for chunk in chunks[1:])
    assert transfer_chunks(split_chunks(files, 1, busy=False)) == (tuple(files),)
    assert transfer_chunks(()) == ()
