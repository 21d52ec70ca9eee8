"""CLI groups ``medsilo attest ...`` (challenge, software, verify) and ``medsilo registry
update`` (install a validated vulnerability registry). Kept out of :mod:`medsilo.cli`.

``attest verify`` exits 0 when the site is admitted, 1 when rejected (the reason is printed),
2 on unusable input; the decision is printed as JSON.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medsilo.attestation.evidence import load_evidence, save_evidence
from medsilo.attestation.measurement import measure_files, package_measurement
from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.policy import enrol, load_policy
from medsilo.attestation.registry_update import RegistryError, install_registry
from medsilo.attestation.software import sign_evidence
from medsilo.confidential.platform import PlatformKind
from medsilo.ledger.keys import (
    load_or_create_private_key,
    load_public_key,
    public_pem,
)
from medsilo.ledger.store import Ledger

attest_app = typer.Typer(help="Attestation evidence for enrolment.", no_args_is_help=True)
registry_app = typer.Typer(help="The TEE vulnerability registry.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


@attest_app.command("challenge")
def challenge() -> None:
    """Print a fresh random nonce (coordinator side) to send to a site."""
    typer.echo(secrets.token_hex(32))


@attest_app.command("software")
def software(
    key: Annotated[Path, typer.Option(help="site Ed25519 private key PEM (created if missing)")],
    out: Annotated[Path, typer.Option(help="evidence JSON to write")],
    nonce: Annotated[str, typer.Option(help="the coordinator's challenge")],
    site: Annotated[str, typer.Option(help="site name")] = "site",
    measure: Annotated[
        Path | None, typer.Option(help="file/folder to measure (default: medsilo package)")
    ] = None,
    platform: Annotated[str, typer.Option(help="claimed platform kind")] = "software",
    tcb_version: Annotated[str, typer.Option(help="claimed TCB version")] = "",
    public_out: Annotated[Path | None, typer.Option(help="also write the public key PEM")] = None,
) -> None:
    """Sign software evidence (NO hardware root of trust: a signed claim, docs/attestation.md)."""
    private = load_or_create_private_key(key)
    measurement = measure_files(measure) if measure else package_measurement()
    try:
        kind: PlatformKind = platform  # type: ignore[assignment]  # validated by Evidence
        evidence = sign_evidence(
            private,
            site=site,
            measurement=measurement,
            nonce=nonce,
            platform=kind,
            tcb_version=tcb_version,
        )
    except ValueError as err:
        raise _fail(str(err)) from err
    save_evidence(evidence, out)
    if public_out is not None:
        public_out.write_bytes(public_pem(private.public_key()))
    typer.echo(f"wrote {out} (backend: software, measurement {measurement})")


@attest_app.command("verify")
def verify(
    evidence_path: Annotated[Path, typer.Argument(metavar="EVIDENCE.json")],
    policy: Annotated[Path, typer.Option(help="enrolment policy YAML")],
    public_key: Annotated[Path, typer.Option(help="the site's registered public key PEM")],
    nonce: Annotated[str, typer.Option(help="the challenge issued to this site")],
    ledger: Annotated[
        Path | None, typer.Option(help="audit ledger to record the decision in")
    ] = None,
) -> None:
    """Decide whether the site is admitted; prints the decision as JSON."""
    try:
        evidence = load_evidence(evidence_path)
        rules = load_policy(policy)
        key = load_public_key(public_key)
    except (OSError, ValueError) as err:
        raise _fail(str(err)) from err
    book = NonceBook()
    book.expect(evidence.site, nonce)
    keys = {evidence.site: key}
    if ledger is None:
        decision = enrol(evidence, rules, book, keys)
    else:
        with Ledger(ledger, load_or_create_private_key()) as open_ledger:
            decision = enrol(evidence, rules, book, keys, ledger=open_ledger)
    result = {"site": decision.site, "accepted": decision.accepted, "reason": decision.reason}
    typer.echo(json.dumps(result | decision.details(), indent=2))
    raise typer.Exit(0 if decision.accepted else 1)


@registry_app.command("update")
def update(source: Annotated[Path, typer.Argument(metavar="FILE.json")]) -> None:
    """Validate FILE.json and install it as the registry this user's runs load."""
    try:
        target, count = install_registry(source)
    except (RegistryError, OSError) as err:
        raise _fail(str(err)) from err
    typer.echo(f"installed {count} entries to {target}")
