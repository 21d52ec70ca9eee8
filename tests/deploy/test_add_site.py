"""``medsilo provision add-site``: a new site's kit from the existing CA, nobody else re-issued.

The other kits must stay byte-identical (hashes of every file before and after); the new
site's keys load with Flower's loaders and its evidence enrols with the coordinator kit; bad
input changes nothing; with a council the admission needs the council's quorum.
"""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest
from flwr.cli.supernode.register import try_load_public_key
from flwr.supernode.cli.flower_supernode import _try_setup_client_authentication
from typer.testing import CliRunner

from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.policy import enrol
from medsilo.attestation.software import sign_evidence
from medsilo.cli import app
from medsilo.deploy import pki
from medsilo.deploy.kit_files import (
    load_attestation_keys,
    load_enrolment_policy,
    load_roster,
    load_site_identity,
)
from medsilo.deploy.kits import SITE_FILES
from medsilo.governance.council import COUNCIL_FILE
from medsilo.governance.decisions import DecisionBook, ledger_records, record_payload
from medsilo.governance.membership import membership_proposal, removed_sites
from medsilo.governance.proposal import sign_approval, write_json
from medsilo.governance.record_kinds import DECISION_KIND
from medsilo.governance.run_gate import KIT_DECISIONS_DIR
from medsilo.ledger.keys import load_or_create_private_key
from tests.deploy.conftest import RAW
from tests.deploy.tree import tree_hashes
from tests.governance.quorum_fixtures import council_of, member_key, provision_council

runner = CliRunner()


def add(out: Path, name: str, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["provision", "add-site", str(out), "--name", name, *extra], env={"COLUMNS": "500"}
    )
    return result.exit_code, " ".join(result.output.split())


def test_added_site_leaves_every_other_kit_byte_identical(federation: Path) -> None:
    before = tree_hashes(federation)
    code, output = add(federation, "site_c")
    assert code == 0, output
    after = tree_hashes(federation)
    changed = {path for path in before if before[path] != after.get(path)}
    assert changed == {
        "coordinator/federation.json",
        "coordinator/register-sites.sh",
        "coordinator/README.txt",
    }
    added = set(after) - set(before)
    assert added == {f"sites/site_c/{name}" for name in SITE_FILES} | {
        "coordinator/site-keys/site_c.pub",
        "coordinator/site-keys/site_c.attest.pub",
    }
    roster = load_roster(federation / "coordinator")
    assert roster.sites == ("site_a", "site-b", "site_c")  # appended: the order is kept
    assert "--name site_c" in (federation / "coordinator" / "register-sites.sh").read_text()


def test_added_site_is_a_working_member(federation: Path) -> None:
    assert add(federation, "site_c")[0] == 0
    kit = federation / "sites" / "site_c"
    assert (kit / "ca.crt").read_bytes() == (federation / "authority" / "ca.crt").read_bytes()
    identity = load_site_identity(kit)
    assert (identity.name, identity.coordinator) == ("site_c", "coord.example.org:8443")
    for private in ("node.key", "attest.key"):
        assert stat.S_IMODE((kit / private).stat().st_mode) == 0o600
    # Flower loads the node key, and the coordinator registers that very key.
    args = argparse.Namespace(
        auth_supernode_private_key=str(kit / "node.key"), auth_supernode_public_key=None
    )
    assert _try_setup_client_authentication(args) is not None
    registered = try_load_public_key(federation / "coordinator" / "site-keys" / "site_c.pub")
    assert registered == try_load_public_key(kit / "node.pub")
    others = {try_load_public_key(federation / "sites" / s / "node.pub") for s in RAW_SITES}
    assert registered not in others
    # Its attestation evidence enrols with the coordinator kit's keys and policy.
    coordinator = federation / "coordinator"
    policy = load_enrolment_policy(coordinator)
    book = NonceBook()
    evidence = sign_evidence(
        identity.attest_private_key(),
        site="site_c",
        measurement=policy.allowed_measurements[0],
        nonce=book.issue("site_c"),
    )
    decision = enrol(evidence, policy, book, load_attestation_keys(coordinator))
    assert decision.accepted, decision.reason


RAW_SITES = [site["name"] for site in RAW["sites"]]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad name", "is not a valid site name"),
        ("-dash", "is not a valid site name"),
        ("site-b", "'site-b' is already in the federation"),
        ("coordinator", "'coordinator' is reserved"),
    ],
)
def test_bad_or_taken_names_are_refused_and_nothing_is_written(
    federation: Path, name: str, message: str
) -> None:
    before = tree_hashes(federation)
    code, output = add(federation, name)
    assert code == 2 and message in output, output
    assert tree_hashes(federation) == before


def test_a_missing_or_foreign_ca_key_is_refused_and_nothing_is_written(
    federation: Path, tmp_path: Path
) -> None:
    key = federation / "authority" / "ca.key"
    kept = key.read_bytes()
    key.unlink()
    before = tree_hashes(federation)
    code, output = add(federation, "site_c")
    assert code == 2 and "ca.key is missing" in output, output
    assert tree_hashes(federation) == before
    # A CA key of another provisioning signs what no kit of this one trusts.
    stranger = pki.make_ca("stranger", 30)
    pki.write_private(key, pki.tls_key_pem(stranger.key))
    before = tree_hashes(federation)
    code, output = add(federation, "site_c")
    assert code == 2 and "is not the private key of" in output, output
    assert tree_hashes(federation) == before
    key.unlink()
    pki.write_private(key, kept)
    code, output = add(tmp_path / "nowhere", "site_c")
    assert code == 2 and "is not a provisioned federation folder" in output


def approve_admission(kits: Path, site: str, *members: str) -> None:
    decisions = kits / "coordinator" / KIT_DECISIONS_DIR
    council = council_of(kits)
    proposal = membership_proposal(
        council, load_roster(kits / "coordinator").sites, "admit_site", site
    )
    DecisionBook(decisions, council).propose(proposal)
    for member in members:
        approval = sign_approval(member_key(kits, member), proposal, member, council)
        write_json(decisions / "approvals" / f"{member}.json", approval)


def test_with_a_council_a_new_site_needs_an_approved_admit_site(tmp_path: Path) -> None:
    kits = provision_council(tmp_path / "kits")
    decisions = kits / "coordinator" / KIT_DECISIONS_DIR
    code, output = add(kits, "d")
    assert code == 2 and "admit_site d needs the council's approval" in output, output
    approve_admission(kits, "d", "a")  # 1 of the 2 needed
    before = tree_hashes(kits)
    code, output = add(kits, "d")
    assert code == 2 and "1 of 2 approvals; 1 more needed from: b, c" in output, output
    assert tree_hashes(kits) == before  # nothing written, the proposal not consumed
    approval = sign_approval(
        member_key(kits, "c"),
        DecisionBook(decisions, council_of(kits)).proposals()[0],
        "c",
        council_of(kits),
    )
    write_json(decisions / "approvals" / "c.json", approval)
    # The governance ledger is the coordinator's: another key (or none) is refused up front.
    missing = tmp_path / "no-such.key"
    other = tmp_path / "other.key"
    load_or_create_private_key(other)
    before = tree_hashes(kits)
    for key in (missing, other):
        code, output = add(kits, "d", "--ledger-key", str(key))
        assert code == 2 and f"is not signed with {key}" in output, output
        assert tree_hashes(kits) == before and not missing.exists()
    code, output = add(kits, "d")
    assert code == 0, output
    # The kit carries the (unchanged) council; the admission is on the governance ledger.
    council_text = (kits / "coordinator" / COUNCIL_FILE).read_bytes()
    assert (kits / "sites" / "d" / COUNCIL_FILE).read_bytes() == council_text
    for member in ("a", "b", "c"):
        assert (kits / "sites" / member / COUNCIL_FILE).read_bytes() == council_text
    records = ledger_records(decisions)
    (decision,) = [record_payload(r) for r in records if r.kind == DECISION_KIND]
    assert decision["proposal"]["action"] == "admit_site"
    assert decision["proposal"]["subject"] == "d"
    assert sorted(a["member"] for a in decision["approvals"]) == ["a", "c"]
    roster = load_roster(kits / "coordinator").sites
    assert roster == ("a", "b", "c", "d")
    assert removed_sites(records, roster, council_of(kits)) == {}  # the replay accepts it
    code, output = add(kits, "e")  # the approval was d's, and it is consumed
    assert code == 2 and "admit_site e needs the council's approval" in output
