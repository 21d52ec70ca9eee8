"""Every YAML file a user writes is explained the same way when it is invalid: the file, then
one ``  - where: what`` line per problem, without pydantic's own text or its URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from medsilo.attestation.policy import load_policy
from medsilo.config import load_config
from medsilo.data.schema import load_schema
from medsilo.data.site_mapping import load_mapping
from medsilo.deploy.spec import load_federation

LOADERS: dict[str, tuple[Callable[[Path], object], str, str, list[str]]] = {
    "run config": (
        load_config,
        "seed: first\ndata: {dataset: heart_disease}\n"
        "training: {local_steps: 5, local_epochs: 1}\n",
        "invalid configuration in {path}:",
        [
            "  - seed: Input should be a valid integer, unable to parse string as an integer "
            "(got 'first')",
            "  - training: set exactly one of training.local_steps or training.local_epochs",
        ],
    ),
    "federation file": (
        load_federation,
        "federation: demo\ncoordinator: {address: 127.0.0.1, port: 70000}\nsites: []\n",
        "invalid federation file {path}:",
        [
            "  - coordinator.port: Input should be less than or equal to 65535 (got 70000)",
            "  - sites: List should have at least 1 item after validation, not 0 (got [])",
        ],
    ),
    "federation schema": (
        load_schema,
        "name: s\nlabel: {name: y, classes: [a]}\ncolumns: [{name: x, type: binary}]\n",
        "{path}: invalid federation schema:",
        [
            "  - label.classes: List should have at least 2 items after validation, not 1 "
            "(got ['a'])"
        ],
    ),
    "site mapping": (
        load_mapping,
        "columns: {a: {to: x, units: kg}}\nmissing: [NA]\n",
        "{path}: invalid site mapping:",
        [
            "  - columns.a.units: Extra inputs are not permitted (got 'kg')",
            "  - missing: Extra inputs are not permitted (got ['NA'])",
        ],
    ),
    "enrolment policy": (
        load_policy,
        "allowed_backends: [software]\nallowed_measurements: []\n",
        "bad enrolment policy {path}:",
        [
            "  - allowed_measurements: Tuple should have at least 1 item after validation, "
            "not 0 (got [])"
        ],
    ),
}


@pytest.mark.parametrize("kind", list(LOADERS))
def test_invalid_file_gives_one_line_per_problem(kind: str, tmp_path: Path) -> None:
    load, text, heading, problems = LOADERS[kind]
    path = tmp_path / "file.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load(path)
    message = str(err.value)
    assert message.splitlines() == [heading.format(path=path), *problems]
    assert "pydantic" not in message and "Value error" not in message
