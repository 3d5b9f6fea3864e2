"""How a large load is split between this process and its workers, and what travels back."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pytest

from reconciler.load.pool import MAIN_SHARE, MAIN_SHARE_BUSY, split_chunks
from reconciler.model.desired import (
    DesiredIntegration,
    DesiredState,
    RetryPolicy,
    SecretValue,
    Source,
)
from reconciler.model.enums import ConfigType, Environment, Platform
from reconciler.model.sensitive import Sensitive


@pytest.mark.parametrize("files", [2, 3, 1000, 30_001])
@pytest.mark.parametrize("processes", [2, 3, 4])
@pytest.mark.parametrize("busy", [False, True])
def test_chunks_keep_every_file_in_order(files: int, processes: int, busy: bool) -> None:
    items = list(range(files))
    chunks = split_chunks(items, processes, busy=busy)
    assert [f for chunk in chunks for f in chunk] == items
    assert len(chunks) <= processes


def test_this_process_takes_a_smaller_chunk_the_more_it_does_besides() -> None:
    items = list(range(30_000))
    idle = [len(c) for c in split_chunks(items, 2, busy=False)]
    busy = [len(c) for c in split_chunks(items, 2, busy=True)]
    assert idle[0] == pytest.approx(idle[1] * MAIN_SHARE, abs=1)
    assert busy[0] == pytest.approx(busy[1] * MAIN_SHARE_BUSY, abs=1)
    assert busy[0] < idle[0] <= idle[1] < busy[1]


def test_small_and_empty_inputs() -> None:
    assert split_chunks([], 2, busy=True) == ()
    one: list[Any] = ["a"]
    assert split_chunks(one, 2, busy=False) == (("a",),)
    assert split_chunks(["a", "b"], 1, busy=False) == (("a", "b"),)


def _state() -> DesiredState:
    secret = SecretValue(Sensitive("sk_live_not_a_real_key"), "f" * 64)
    integration = DesiredIntegration(
        tenant_id="acme",
        platform=Platform.STRIPE,
        environment=Environment.PRODUCTION,
        config_type=ConfigType.API_KEY,
        is_primary=True,
        is_active=True,
        api_key=secret,
        api_secret=None,
        sync_interval=15,
        sync_direction=None,
        features={"invoices": True},
        mapping_rules={},
        filter_rules={},
        transform_rules={},
        source=Source(str(Path("tenants/acme/stripe.yaml"))),
    )
    return DesiredState(
        integrations=(integration,), tenants=frozenset({"acme"}), manifests_digest="d"
    )


def test_worker_results_travel_whole_between_our_processes() -> None:
    state = _state()
    back = pickle.loads(ForkingPickler.dumps(state))
    assert back == state
    assert back.integrations[0].api_key.value.reveal() == "sk_live_not_a_real_key"
    retry = RetryPolicy(5, 30, 2.0, 3600)
    assert pickle.loads(ForkingPickler.dumps(retry)) == retry


def test_plain_pickle_still_refuses_a_secret() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(_state())
