"""The store reads JSON columns as :func:`json.loads` reads the server's text of them."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg.types.json import set_json_loads

from reconciler.store.read import _json_loads
from tests.e2e.workspace import libpq_url

DOCUMENTS = [
    "{}",
    "[]",
    '{"invoices": true, "deals": false, "note": null}',
    '{"big": 1180591620717411303424, "negative": -9223372036854775809}',
    '{"ratio": 0.1, "tiny": 5e-324, "huge": 1.7976931348623157e308, "whole": 2.0}',
    '{"text": "caf\\u00e9 \\u2603 \\ud83d\\ude00", "quote": "a \\"b\\" \\\\ c\\n"}',
    '{"nested": {"list": [1, [2, {"three": [3.5]}]], "empty": {}}}',
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_json_column_is_read_as_json_loads_reads_its_text(
    database_url: str, document: str
) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn, conn.cursor() as cursor:
        set_json_loads(_json_loads, cursor)
        cursor.execute("SELECT %s::jsonb, %s::jsonb::text", (document, document))
        row = cursor.fetchone()
    assert row is not None
    value, text = row
    expected = json.loads(text)
    assert value == expected
    assert json.dumps(value, sort_keys=True) == json.dumps(expected, sort_keys=True)  # types too
