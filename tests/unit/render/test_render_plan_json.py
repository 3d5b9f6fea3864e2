"""Plan JSON: schema validity, round trip, the committed schema file, fail-closed masking."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.model.enums import Platform
from reconciler.model.plan import FORMAT_VERSION, Action, Change, FieldChange, Plan, ResourceKind
from reconciler.render.plan_github import render_github
from reconciler.render.plan_json import UnmaskedSensitiveValue, render_json
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_schema import SCHEMA_ID, plan_json_schema, plan_json_schema_text
from reconciler.render.plan_text import render_text
from tests.unit.render.golden_files import check_against_file
from tests.unit.render.sample_plans import (
    CREATED_AT,
    DIGEST,
    FINGERPRINT,
    SAMPLE_PLANS,
    addr,
    mixed_plan,
)

SCHEMA_FILE = Path(__file__).parents[3] / "schemas" / "plan.v1.json"
SECRET = "sk_live_do_not_print_4417"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = plan_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def test_committed_schema_matches_generated() -> None:
    check_against_file(SCHEMA_FILE, plan_json_schema_text())


def test_schema_identity() -> None:
    schema = plan_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID == "https://reconciler.dev/schemas/plan.v1.json"
    assert schema["properties"]["format_version"]["const"] == FORMAT_VERSION == 1


def test_every_property_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{path}.{name}")
            for key, sub in node.items():
                if key not in ("if", "then"):  # conditions restate already described fields
                    walk(sub, f"{path}.{key}")

    walk(plan_json_schema(), "$")
    assert missing == []


@pytest.mark.parametrize("name", sorted(SAMPLE_PLANS))
def test_rendered_json_validates_and_round_trips(
    name: str, validator: jsonschema.Draft202012Validator
) -> None:
    plan = SAMPLE_PLANS[name]()
    text = render_json(plan)
    assert text.endswith("}\n")
    doc = json.loads(text)
    assert errors(validator, doc) == []
    assert Plan.from_dict(doc) == plan


def test_json_is_the_plan_dict_in_model_order() -> None:
    plan = mixed_plan()
    assert render_json(plan) == json.dumps(plan.to_dict(), indent=2) + "\n"
    assert list(json.loads(render_json(plan)))[:2] == ["format_version", "created_at"]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(format_version=2), "1 was expected"),
        (lambda d: d["changes"][0].update(action="no-op"), "is not one of"),
        (lambda d: d["changes"][0].update(address="acme/stripe/prod/x/y"), "does not match"),
        (lambda d: d.update(extra=1), "Additional properties"),
        (lambda d: d["changes"][1]["fields"][3].update(after=SECRET), "is not one of"),
        (lambda d: d["changes"][0]["risk"].update(level="SEVERE"), "is not one of"),
        (lambda d: d["summary"]["by_action"].pop("revoke"), "'revoke' is a required property"),
    ],
    ids=["version", "noop", "address", "extra", "unmasked", "level", "summary"],
)
def test_schema_rejects_bad_documents(
    mutate: Any, needle: str, validator: jsonschema.Draft202012Validator
) -> None:
    doc = copy.deepcopy(mixed_plan().to_dict())
    assert errors(validator, doc) == []
    mutate(doc)
    assert any(needle in e for e in errors(validator, doc))


@pytest.mark.parametrize(
    "render",
    [
        render_json,
        lambda p: render_text(p, color=False),
        render_markdown,
        render_github,
    ],
    ids=["json", "text", "markdown", "github"],
)
@pytest.mark.parametrize("side", ["before", "after"])
def test_every_renderer_refuses_an_unmasked_sensitive_value(render: Any, side: str) -> None:
    values = {"before": None, "after": None, side: SECRET}
    leaky = Change(
        addr("acme-robotics", Platform.STRIPE, ResourceKind.INTEGRATION, "API_KEY"),
        Action.UPDATE,
        fields=(FieldChange("api_key", values["before"], values["after"], sensitive=True),),
    )
    plan = Plan(CREATED_AT, DIGEST, FINGERPRINT, changes=(leaky,))
    with pytest.raises(UnmaskedSensitiveValue) as info:
        render(plan)
    assert SECRET not in str(info.value)
    assert "api_key" in str(info.value)
