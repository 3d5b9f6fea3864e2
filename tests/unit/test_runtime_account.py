"""The services' client names a new token's account by exactly the store's account columns."""

from __future__ import annotations

import dataclasses

from reconciler.runtime import OAuthAccount
from reconciler.store.runtime import ACCOUNT_COLUMNS


def test_an_oauth_account_has_every_account_column_of_a_new_token() -> None:
    names = [f.name for f in dataclasses.fields(OAuthAccount) if f.name != "platform"]
    assert names == list(ACCOUNT_COLUMNS)
