"""Patient-level consent: each round a site trains only on its consenting patients' rows."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import Mock

import numpy as np
import pytest
import yaml

from medsilo.config import ConfigError, RunConfig, dump_config, load_config
from medsilo.data.base import DataFormatError, FederatedData, SiteData
from medsilo.data.registry import build_federation
from medsilo.experiment import run_experiment
from medsilo.governance.patient_consent import PatientConsent, set_digest
from medsilo.governance.patient_register import (
    ConsentEntry,
    create_site_key,
    load_site_key,
    patient_ref,
    read_register,
)
from medsilo.runtime.flower import deployed_server
from medsilo.runtime.flower.server_app import FlowerRun, make_server_app
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config
from tests.governance.patients import START, Registers, joins_in, round_time

ROUNDS = {"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1}


def consent_config(regs: Registers, **extra: object) -> RunConfig:
    return small_config(training=ROUNDS, governance={"patient_consent": regs.section()}, **extra)


def heart() -> FederatedData:
    return build_federation(small_config().data, 0)


def test_a_site_trains_only_on_patients_consenting_at_that_round(tmp_path: Path) -> None:
    regs = Registers(tmp_path, ["cleveland", "va"])
    result = run_federation(consent_config(regs))
    for rec in result.rounds:
        assert rec.patients is not None and set(rec.patients) == {"cleveland", "va"}
        for site in ("cleveland", "va"):
            rows = [
                r
                for r in range(regs.sizes[site])
                if (j := joins_in(r)) is not None and j <= rec["round"]
            ]
            assert rec.patients[site]["consented"] == len(rows)
            key = load_site_key(regs.key_file(site))
            refs = [patient_ref(key, regs.patient(site, r)) for r in rows]
            assert rec.patients[site]["sha256"] == set_digest(refs)
        assert "hungarian" not in rec.patients  # no register: every row trains
    assert [r["round"] for r in result.rounds] == [1, 2, 3, 4]


def test_training_equals_a_federation_holding_only_the_consenting_rows(tmp_path: Path) -> None:
    """Consent at every round for a fixed set of rows is, bit for bit, the federation whose
    site holds only those rows (in order): the filter changes nothing else."""
    regs = Registers(tmp_path, ["hungarian"])
    kept = [r for r in range(regs.sizes["hungarian"]) if joins_in(r) is not None]
    regs.entries["hungarian"] = {
        regs.patient("hungarian", r): ConsentEntry(START, None) for r in kept
    }
    regs.write("hungarian")
    consented = run_federation(consent_config(regs))

    fed = heart()
    site = fed.site("hungarian")
    smaller = SiteData("hungarian", site.train.subset(np.asarray(kept)), site.test)
    sites = [smaller if s.name == "hungarian" else s for s in fed.sites]
    plain = run_federation(small_config(training=ROUNDS), dataclasses.replace(fed, sites=sites))
    for a, b in zip(consented.weights, plain.weights, strict=True):
        assert np.array_equal(a, b)
    assert consented.rounds[-1].patients == {
        "hungarian": {
            "consented": len(kept),
            "sha256": consented.rounds[0].patients["hungarian"]["sha256"],
        }
    }


def test_a_revocation_stops_training_from_the_next_round(tmp_path: Path) -> None:
    regs = Registers(tmp_path, ["cleveland"])
    patient = regs.patient("cleveland", 0)  # joins in round 1, revokes before round 3
    regs.entries["cleveland"][patient] = ConsentEntry(START, round_time(3) - timedelta(hours=2))
    regs.write("cleveland")
    key = load_site_key(regs.key_file("cleveland"))
    for rec in run_federation(consent_config(regs)).rounds:
        rows = [
            r
            for r in range(regs.sizes["cleveland"])
            if (j := joins_in(r)) is not None and j <= rec["round"]
        ]
        if rec["round"] >= 3:
            rows.remove(0)
        refs = [patient_ref(key, regs.patient("cleveland", r)) for r in rows]
        assert rec.patients is not None
        assert rec.patients["cleveland"] == {"consented": len(rows), "sha256": set_digest(refs)}


def test_a_site_without_consenting_patients_does_not_train_that_round(tmp_path: Path) -> None:
    regs = Registers(tmp_path, ["switzerland"])
    regs.entries["switzerland"] = {
        regs.patient("switzerland", 0): ConsentEntry(round_time(3), None)
    }
    regs.write("switzerland")
    rounds = run_federation(consent_config(regs)).rounds
    for rec in rounds[:2]:
        assert rec.patients == {"switzerland": {"consented": 0, "sha256": set_digest([])}}
        assert "switzerland" not in (rec.bytes_up_site or {})
        assert rec.dropped == []
    assert rounds[2].patients["switzerland"]["consented"] == 1
    assert "switzerland" in (rounds[2].bytes_up_site or {})


def test_register_problems_are_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "patient_id,granted,revoked\n"
        "a,2026-11-01,\n"
        "a,2026-11-02,\n"
        "b,yesterday,\n"
        "c,2026-11-05,2026-11-01\n"
        "d,2026-11-01\n"
    )
    with pytest.raises(DataFormatError) as err:
        read_register(bad)
    text = str(err.value)
    assert "line 3: patient_id 'a' appears twice" in text
    assert "line 4, granted: 'yesterday' is not an ISO 8601" in text
    assert "line 5: revoked (2026-11-01) is not after granted" in text
    assert "line 6: 2 cells, expected 3" in text
    (tmp_path / "header.csv").write_text("id,from,to\n")
    with pytest.raises(DataFormatError, match="header must be patient_id,granted,revoked"):
        read_register(tmp_path / "header.csv")
    with pytest.raises(DataFormatError, match="consent register not found"):
        read_register(tmp_path / "missing.csv")
    key = create_site_key(tmp_path / "k.key")
    with pytest.raises(DataFormatError, match="never overwritten"):
        create_site_key(key)
    (tmp_path / "short.key").write_text("abcd\n")
    with pytest.raises(DataFormatError, match="64 hex digits"):
        load_site_key(tmp_path / "short.key")


def test_bad_consent_settings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    regs = Registers(tmp_path / "regs", ["cleveland"])
    out = tmp_path / "runs"
    section = regs.section()
    unknown = {**section, "sites": {"atlantis": section["sites"]["cleveland"]}}
    cfg = small_config(training=ROUNDS, governance={"patient_consent": unknown})
    with pytest.raises(ConfigError, match=r"names unknown site\(s\) \['atlantis'\]"):
        run_experiment(cfg, out / "a")
    regs.register_file("cleveland").write_text("patient_id,granted,revoked\nx,never,\n")
    with pytest.raises(DataFormatError, match="not an ISO 8601"):
        run_experiment(consent_config(regs), out / "b")
    regs.write("cleveland")
    with pytest.raises(ConfigError, match=r"privacy\.dp_sgd"):
        run_experiment(
            consent_config(
                regs, privacy={"dp_sgd": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}}
            ),
            out / "c",
        )
    standardized = consent_config(
        regs, data={"dataset": "heart_disease", "partition": "natural", "standardize": "federated"}
    )
    with pytest.raises(ConfigError, match="standardize: federated"):
        run_experiment(standardized, out / "d")
    with pytest.raises(ConfigError, match="synchronous engine only"):
        run_experiment(consent_config(regs, asynchrony={"mode": "fedasync"}), out / "e")
    assert not out.exists()


def test_relative_paths_are_read_from_the_config_files_folder(tmp_path: Path) -> None:
    regs = Registers(tmp_path, ["va"])
    raw = small_config(training=ROUNDS).model_dump(mode="json")
    raw["governance"]["patient_consent"] = {
        **regs.section(),
        "sites": {"va": {"register_file": "va.csv", "key_file": "va.key"}},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    consent = PatientConsent.of(cfg, regs.sizes)
    assert consent.sites["va"].ids[0] == regs.patient("va", 0)
    assert cfg.governance.patient_consent is not None
    assert cfg.governance.patient_consent.round_time(3) == round_time(3)


def test_flower_and_a_deployed_coordinator_refuse_patient_consent(tmp_path: Path) -> None:
    """Only the in-process engine reads the registers; Flower would train every row."""
    cfg = consent_config(Registers(tmp_path, ["va"]))
    prepared = PreparedFederation.build(small_config(training=ROUNDS))
    with pytest.raises(ConfigError, match="in-process engine only; the Flower ServerApp"):
        make_server_app(cfg, prepared, FlowerRun())
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(dump_config(cfg))
    run_config = {"experiment": str(experiment), "kit": "kit", "run-dir": str(tmp_path / "run")}
    with pytest.raises(ConfigError, match="in-process engine only; a deployed coordinator"):
        deployed_server.main(Mock(), SimpleNamespace(run_config=run_config))
    assert not (tmp_path / "run").exists()


def test_a_held_out_site_takes_its_register_with_it(tmp_path: Path) -> None:
    """Leave-one-hospital-out runs the federation without a site: its register goes too."""
    regs = Registers(tmp_path, ["cleveland", "va"])
    section = regs.section(withdrawn={"va": ["ref"]})
    gov = small_config(governance={"patient_consent": section})
    without_va = gov.governance.without("va").patient_consent
    assert without_va is not None
    assert list(without_va.sites) == ["cleveland"] and without_va.withdrawn == {}
    assert gov.governance.without("va").without("cleveland").patient_consent is None
