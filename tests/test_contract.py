"""The contract's pieces agree: the committed JSON Schema, the record model, the declared HF features."""

from __future__ import annotations

import json

import jsonschema

from validation.record import SCHEMA_VERSION
from validation.schema import SCHEMA_PATH, generate_schema, load_schema
from validation.shards import hf_features, hf_features_yaml


def test_committed_schema_is_generated_from_the_record_model():
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(json.dumps(generate_schema(), sort_keys=True)), (
        "validation/schemas is stale: run `python -m validation.schema`")


def test_schema_is_draft_2020_12_and_versioned():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert "schema_version" in schema["required"]


def test_fixture_records_validate_and_a_broken_one_does_not(fixture_samples):
    validator = jsonschema.Draft202012Validator(load_schema())
    for record, _ in fixture_samples:
        assert not list(validator.iter_errors(record.model_dump(mode="json")))
    broken = fixture_samples[0][0].model_dump(mode="json")
    broken["messages"][1]["content"][0]["frames"] = ["zero"]
    del broken["question"]
    messages = {e.message for e in validator.iter_errors(broken)}
    assert any("question" in m for m in messages) and any("zero" in m for m in messages)


def test_declared_yaml_features_are_the_datasets_features():
    assert hf_features()._to_yaml_list() == hf_features_yaml()
