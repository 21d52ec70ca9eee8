"""The specification's validation and its compilation to parameterised SQL (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from medsilo.omop.cohort_spec import CohortSpec, Feature, load_cohort_spec
from medsilo.omop.cohort_sql import compile_cohort
from tests.omop.heart_cdm import EXAMPLES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "omop.md"
#: The units docs/omop.md's query is compiled for: feature index -> unit concept -> factor.
DOC_UNITS = {
    3: {8876: (1.0, 0.0)},
    4: {8840: (1.0, 0.0), 8753: (38.67, 0.0)},
    7: {8541: (1.0, 0.0)},
    9: {8588: (1.0, 0.0)},
}


def test_docs_show_the_sql_the_example_compiles_to() -> None:
    query, _ = compile_cohort(load_cohort_spec(EXAMPLES / "heart_cohort.yaml"), "cdm", DOC_UNITS)
    assert f"```sql\n{query.as_string(None)}\n```" in DOCS.read_text(encoding="utf-8")


def test_every_value_is_a_parameter_and_the_schema_is_quoted() -> None:
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    query, params = compile_cohort(spec, 'we"ird', DOC_UNITS)
    text = query.as_string(None)
    assert '"we""ird"."measurement"' in text
    for concept in (3004249, 3027114, 317576, 9202, 8753):
        assert str(concept) not in text
    assert (
        params["f4_concepts"] == [3027114]
        and params["f4_unit0"] == 8753
        and params["f4_scale0"] == 38.67
    )
    assert params["ex0_start"] == -3650 and params["label_end"] == 30


def test_the_aggregates_compile() -> None:
    spec = load_cohort_spec(EXAMPLES / "heart_cohort.yaml")
    changed = [
        f.model_copy(update={"aggregate": a})
        for f, a in zip(
            spec.features[2:8], ["first", "min", "mean", "count", "exists", "max"], strict=True
        )
    ]
    other = spec.model_copy(update={"features": [*spec.features[:2], *changed]})
    text = compile_cohort(other, "cdm")[0].as_string(None)
    assert "ASC LIMIT 1" in text and "min(" in text and "avg(" in text
    assert "count(*)" in text and "THEN 1.0 ELSE 0.0" in text


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"to": "x", "source": "measurement"}, "needs concept_ids"),
        ({"to": "x", "source": "age", "concept_ids": [1]}, "takes no concept_ids"),
        ({"to": "x", "source": "condition", "concept_ids": [1]}, "aggregate must be count"),
        ({"to": "x", "source": "gender"}, "go with gender only"),
        (
            {
                "to": "x",
                "source": "observation",
                "concept_ids": [1],
                "window": {"start": 2, "end": 1},
            },
            "after its end",
        ),
    ],
)
def test_bad_features_are_refused(feature: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Feature.model_validate(feature)


def test_concepts_are_listed_with_where_they_are_named() -> None:
    spec = CohortSpec.model_validate(
        {
            "name": "s",
            "index": {"visit_concept_ids": [9202]},
            "features": [{"to": "a", "source": "measurement", "concept_ids": [5]}],
            "label": {"domain": "condition", "concept_ids": [7]},
        }
    )
    assert spec.concept_ids() == {9202: "index", 5: "feature 'a'", 7: "label"}
