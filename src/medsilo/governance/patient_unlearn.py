"""Exact unlearning of one patient whose consent was revoked after training.

Definition. "The model trained from scratch without the patient" is the same config with the
patient's consent revoked before round 1 (register entry removed, or revoked at ``start``);
``medsilo unlearn --patient`` realises it by adding the patient's ref to
``governance.patient_consent.withdrawn`` (the id never leaves the site; a withdrawn ref never
trains, from any round).

Which rounds the patient trained in is read from the run itself: each round record holds, per
site that trained, the SHA-256 of the set of consenting patients' refs. For every round the
site trained in, the site's current register gives the set ``S`` of the *other* consenting
patients; the recorded digest must equal the digest of ``S`` (the patient did not train) or
of ``S`` plus the patient (it did). Anything else means the register changed since training
in more than this patient's revocation, and unlearning is refused rather than guessed.

Exactness. Let ``r0`` be the first round the patient trained in. In rounds ``1..r0-1`` the
original run and the from-scratch run gave every site the same set of patients, hence the
same rows in the same order and the same seeds: their states after round ``r0-1`` are
bit-identical, so resuming from the original's checkpoint of a round ``r' < r0`` with the
patient withdrawn *is* the from-scratch run from ``r'+1`` on. A patient who never trained
(revoked before their first round, or their site never sampled while they consented) needs
no retraining: the model stays in service.
"""

from __future__ import annotations

from pathlib import Path

from medsilo.config import ConfigError, RunConfig
from medsilo.data.registry import build_federation
from medsilo.governance.patient_consent import SitePatients, set_digest, site_patients
from medsilo.governance.patient_register import load_site_key, patient_ref, read_register
from medsilo.governance.unlearn import Retraining, UnlearnOutcome, finished_run, retrain
from medsilo.runtime.round_record import RoundCallback, RoundRecord


def with_patient_withdrawn(cfg: RunConfig, site: str, ref: str) -> RunConfig:
    settings = cfg.governance.patient_consent
    assert settings is not None
    withdrawn = {**settings.withdrawn, site: [*settings.withdrawn.get(site, []), ref]}
    consent = settings.model_copy(update={"withdrawn": withdrawn})
    gov = cfg.governance.model_copy(update={"patient_consent": consent})
    return cfg.model_copy(update={"governance": gov})


def rounds_trained(
    cfg: RunConfig, patients: SitePatients, row: int, records: list[RoundRecord]
) -> list[int]:
    """The rounds in which ``row``'s patient trained, checked against the recorded digests."""
    settings = cfg.governance.patient_consent
    assert settings is not None
    ref = patients.refs[row]
    trained = []
    for rec in records:
        summary = (rec.patients or {}).get(patients.site)
        if summary is None or summary["consented"] == 0:
            continue  # the site did not train in this round
        rnd = int(rec["round"])
        others = {patients.refs[i] for i in patients.consenting(settings, rnd) if i != row}
        if summary["sha256"] == set_digest(others | {ref}):
            trained.append(rnd)
        elif summary["sha256"] != set_digest(others):
            raise ConfigError(
                f"round {rnd} trained site {patients.site!r} on a set of patients that its "
                "register no longer gives (it changed in more than this patient's "
                "revocation); unlearning needs the register the run trained with"
            )
    return trained


def unlearn_patient(
    run_dir: Path,
    site: str,
    patient_id: str,
    out: Path | None = None,
    on_round: RoundCallback | None = None,
) -> UnlearnOutcome:
    """Retrain ``run_dir`` without ``site``'s patient ``patient_id``, whose revocation the
    site's register records, from the last checkpoint before the patient first trained."""
    cfg, records = finished_run(run_dir)
    settings = cfg.governance.patient_consent
    if settings is None or site not in settings.sites:
        raise ConfigError(f"{run_dir} has no patient-level consent register for site {site!r}")
    files = settings.sites[site]
    entry = read_register(files.register_file).get(patient_id)
    if entry is None:
        raise ConfigError(f"patient {patient_id!r} is not in {site!r}'s consent register")
    if entry.revoked is None:
        raise ConfigError(
            f"{site!r}'s consent register shows no revocation for this patient; record the "
            f"revocation in {files.register_file} first"
        )
    ref = patient_ref(load_site_key(files.key_file), patient_id)
    rows = len(build_federation(cfg.data, cfg.seed).site(site).train)
    patients = site_patients(cfg, site, rows)
    row = patients.row_of(patient_id)
    trained = [] if row is None else rounds_trained(cfg, patients, row, records)
    label = f"{site}:patient:{ref[:16]}"
    if not trained:
        return UnlearnOutcome(
            f"{label} never trained in {run_dir} (rounds 1-{len(records)}): no retraining "
            "is needed, the model stays in service"
        )
    plan = Retraining(
        with_patient_withdrawn(cfg, site, ref),
        trained[0],
        label,
        {"site": site, "patient_ref": ref, "rounds_trained": len(trained)},
    )
    return retrain(run_dir, records, plan, out, on_round)
