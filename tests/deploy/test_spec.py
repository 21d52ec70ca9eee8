"""FEDERATION.yaml: bad files fail at load time with a message naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from medsilo.attestation.measurement import package_measurement
from medsilo.attestation.policy import EnrolmentPolicy
from medsilo.cli import app
from medsilo.config import ConfigError
from medsilo.deploy.spec import EnrolmentSpec, load_federation, parse_federation
from tests.deploy.conftest import RAW

EXAMPLE = Path(__file__).parents[2] / "examples" / "deploy" / "federation.yaml"


def _with(path: list[str], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["coordinator", "port"], 70000, "coordinator.port"),
        (["coordinator", "address"], "not a host!", "coordinator.address"),
        (["coordinator", "bind_host"], "example.org", "coordinator.bind_host"),
        (["coordinator", "prot"], 1, "coordinator.prot"),
        (["sites"], [], "sites"),
        (["sites"], [{"name": "a"}, {"name": "a"}], "repeated: a"),
        (["sites"], [{"name": "../etc"}], "sites.0.name"),
        (["validity_days"], 0, "validity_days"),
        (["federation"], "has space", "federation"),
        (["enrolment"], {"allowed_backend": ["software"]}, "enrolment.allowed_backend"),
        (["enrolment"], {"allowed_backends": ["sgx"]}, "enrolment.allowed_backends.0"),
        (["enrolment"], {"allowed_measurements": []}, "enrolment.allowed_measurements"),
        (["enrolment"], {"allowed_measurements": ["ABC"]}, "enrolment.allowed_measurements"),
        (["enrolment"], {"max_age_s": 0}, "enrolment.max_age_s"),
        (["enrolment"], {"exploitable_tcb": "ignore"}, "enrolment.exploitable_tcb"),
    ],
)
def test_bad_values_name_the_field(path: list[str], value: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_federation(_with(path, value))


def test_missing_coordinator_is_named() -> None:
    raw = copy.deepcopy(RAW)
    del raw["coordinator"]
    with pytest.raises(ConfigError, match="coordinator"):
        parse_federation(raw)


def test_not_yaml_and_not_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "f.yaml"
    bad.write_text("sites: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_federation(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_federation(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_federation(tmp_path / "missing.yaml")


def test_example_loads_and_output_is_relative_to_the_file() -> None:
    spec = load_federation(EXAMPLE)
    assert spec.output == EXAMPLE.parent / "kits"
    assert spec.coordinator.subject_alt_names()[0] == spec.coordinator.address
    assert "software" in spec.enrolment.allowed_backends  # listed explicitly, commented
    assert spec.enrolment.allowed_measurements is None  # -> the package measurement


def test_enrolment_spec_mirrors_the_policy() -> None:
    """Same fields as EnrolmentPolicy; every default but the measurements is the policy's."""
    assert set(EnrolmentSpec.model_fields) == set(EnrolmentPolicy.model_fields)
    measurement = "ab" * 32
    assert EnrolmentSpec().resolve(measurement) == EnrolmentPolicy(
        allowed_measurements=(measurement,)
    )
    assert "software" not in parse_federation(RAW).enrolment.resolve().allowed_backends


def test_enrolment_measurements_default_to_the_package_or_are_kept() -> None:
    before = package_measurement()
    omitted = parse_federation(_with(["enrolment"], {"allowed_backends": ["software"]}))
    resolved = omitted.enrolment.resolve()
    assert resolved.allowed_measurements in ((before,), (package_measurement(),))
    assert resolved.allowed_backends == ("software",)
    given = ("cd" * 32, "ef" * 48)
    explicit = parse_federation(_with(["enrolment"], {"allowed_measurements": list(given)}))
    assert explicit.enrolment.resolve().allowed_measurements == given


def test_cli_provisions_then_refuses_then_forces(tmp_path: Path) -> None:
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(RAW))
    runner = CliRunner()
    first = runner.invoke(app, ["provision", str(path), "--out", str(tmp_path / "kits")])
    assert first.exit_code == 0, first.output
    assert "site_a" in first.output and "coordinator" in first.output
    assert "Enrolment policy: backends sev-snp, tdx;" in first.output
    assert (tmp_path / "kits" / "sites" / "site-b" / "start-site.sh").is_file()
    again = runner.invoke(app, ["provision", str(path), "--out", str(tmp_path / "kits")])
    assert again.exit_code == 2
    forced = runner.invoke(
        app, ["provision", str(path), "--out", str(tmp_path / "kits"), "--force"]
    )
    assert forced.exit_code == 0, forced.output
    path.write_text(yaml.safe_dump(_with(["coordinator", "port"], -1)))
    bad = runner.invoke(app, ["provision", str(path), "--out", str(tmp_path / "k2")])
    assert bad.exit_code == 2 and not (tmp_path / "k2").exists()
