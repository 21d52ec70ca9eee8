"""``medsilo provision revoke-site``: a CA-signed revocation list the coordinator obeys.

The list verifies with the kit's CA and names the site, when and why; an edited, unsigned or
foreign list is refused; the coordinator stops registering the revoked site's node key; bad
input (unknown site, a site revoked already, no reason, a missing CA key) changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.deploy import pki
from medsilo.deploy.coordinator import sites_to_register
from medsilo.deploy.revocation import (
    REVOCATION_FILE,
    RevocationError,
    RevocationList,
    load_revocations,
    revocation_document,
)
from tests.deploy.tree import tree_hashes

runner = CliRunner()


def revoke(out: Path, name: str, reason: str = "node key leaked") -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["provision", "revoke-site", str(out), "--name", name, "--reason", reason],
        env={"COLUMNS": "500"},
    )
    return result.exit_code, " ".join(result.output.split())


def test_revocation_is_signed_and_stops_the_key_registration(federation: Path) -> None:
    coordinator = federation / "coordinator"
    assert sites_to_register(coordinator) == ["site_a", "site-b"]
    before = tree_hashes(federation)
    code, output = revoke(federation, "site-b")
    assert code == 0, output
    after = tree_hashes(federation)
    assert set(after) - set(before) == {f"coordinator/{REVOCATION_FILE}"}
    assert all(after[path] == digest for path, digest in before.items())  # nothing else
    revoked = load_revocations(coordinator)
    assert list(revoked) == ["site-b"] and revoked["site-b"].reason == "node key leaked"
    assert "site 'site-b' was revoked" in revoked["site-b"].explain("site-b")
    assert revoked["site-b"].node_key_sha256  # which key, for the audit trail
    assert sites_to_register(coordinator) == ["site_a"]
    code, output = revoke(federation, "site-b", "again")
    assert code == 2 and "it is already revoked" in output
    assert revoke(federation, "site_a")[0] == 0  # a second revocation extends the list
    assert list(load_revocations(coordinator)) == ["site-b", "site_a"]


def test_an_edited_unsigned_or_foreign_list_is_refused(federation: Path) -> None:
    coordinator = federation / "coordinator"
    assert revoke(federation, "site-b")[0] == 0
    path = coordinator / REVOCATION_FILE
    signed = json.loads(path.read_text())
    edited = json.loads(path.read_text())
    edited["revocations"]["sites"] = {}  # the operator un-revokes site-b
    path.write_text(json.dumps(edited))
    with pytest.raises(RevocationError, match="not signed by the certificate authority"):
        load_revocations(coordinator)
    with pytest.raises(RevocationError):
        sites_to_register(coordinator)  # the coordinator does not start on it
    unsigned = {k: v for k, v in signed.items() if k != "authority_signature"}
    path.write_text(json.dumps(unsigned))
    with pytest.raises(RevocationError, match="not signed"):
        load_revocations(coordinator)
    stranger = pki.make_ca("stranger", 30)
    foreign = RevocationList.model_validate(signed["revocations"])
    path.write_text(revocation_document(foreign, stranger.key))
    with pytest.raises(RevocationError, match="not signed"):
        load_revocations(coordinator)
    path.write_text("{broken")
    with pytest.raises(RevocationError, match="not a JSON revocation list"):
        load_revocations(coordinator)


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        ("site_z", "leak", "'site_z' is not a site of federation testfed"),
        ("site_a", "  ", "give a --reason"),
    ],
)
def test_bad_revocations_are_refused_and_nothing_is_written(
    federation: Path, name: str, reason: str, message: str
) -> None:
    before = tree_hashes(federation)
    code, output = revoke(federation, name, reason)
    assert code == 2 and message in output, output
    assert tree_hashes(federation) == before


def test_revocation_needs_the_ca_key(federation: Path) -> None:
    (federation / "authority" / "ca.key").unlink()
    before = tree_hashes(federation)
    code, output = revoke(federation, "site_a")
    assert code == 2 and "ca.key is missing" in output, output
    assert tree_hashes(federation) == before
