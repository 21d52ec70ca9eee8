"""``medsilo audit verify`` and ``medsilo audit show``: check and list a run's audit ledger.

Registered on the ``audit`` group in :mod:`medsilo.audit.command`. ``verify`` exits 0 when
the chain is intact and signed by the key pinned for the ledger (:mod:`medsilo.ledger.trust`),
1 naming the first broken record (seq, kind, round) and why, a key other than the pinned
one, a ``witness`` record not under the key pinned for its site (``witness_keys.json``
beside the ledger, :mod:`medsilo.ledger.witness_keys`) or, with ``--witness``, each record
where the ledger and a site's witness file disagree (:mod:`medsilo.ledger.witness_verify`;
each run site whose file was not given is listed as not checked), 2 when the ledger, key,
trust store, pinned witness keys or a witness file cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from medsilo.ledger.run_ledger import LEDGER_FILE, PUBLIC_KEY_FILE

if TYPE_CHECKING:
    from medsilo.ledger.chain import LedgerRecord
    from medsilo.ledger.witness_keys import WitnessKeys
    from medsilo.ledger.witness_verify import WitnessFinding, WitnessLog

out = Console(width=None if sys.stdout.isatty() else 200)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(2)


def ledger_paths(target: Path) -> list[Path]:
    """``target`` itself, ``target/ledger.sqlite`` for a run directory, or each run's
    ledger for a suite directory (runs one level down)."""
    if target.is_dir() and not (target / LEDGER_FILE).is_file():
        found = sorted(target.glob(f"*/{LEDGER_FILE}"))
        if found:
            return found
    path = target / LEDGER_FILE if target.is_dir() else target
    if not path.is_file():
        raise _fail(f"no audit ledger at {path}")
    return [path]


def ledger_path(target: Path) -> Path:
    paths = ledger_paths(target)
    if len(paths) > 1:
        runs = ", ".join(p.parent.name for p in paths)
        raise _fail(f"{target} holds {len(paths)} ledgers ({runs}); name one run")
    return paths[0]


def verify(
    target: Annotated[Path, typer.Argument(help="a run directory or a ledger.sqlite file")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="coordinator public key PEM (default: ledger.pub beside the ledger)"),
    ] = None,
    require_end: Annotated[
        bool,
        typer.Option(help="fail when the last run has no run_end (a cut tail shows only so)"),
    ] = True,
    repin: Annotated[
        bool,
        typer.Option(help="replace the pinned key with this one (after a real key change)"),
    ] = False,
    witness: Annotated[
        list[Path] | None,
        typer.Option(
            help="a site's witness file, or a folder of them (repeatable): the heads the "
            "sites saw must be in this ledger (catches truncation, re-signing, equivocation)"
        ),
    ] = None,
) -> None:
    """Check every record's chain link, hash and signature, and that the key is the one
    pinned for the ledger; name the first broken record (a suite directory: every run's
    ledger), and each ledgered countersignature against its site's pinned key. With
    ``--witness``, also hold the ledger against the sites' witness files."""
    paths = [ledger_path(target)] if witness else ledger_paths(target)
    logs = _witness_logs(witness or [])
    broken = False
    for path in paths:
        intact = _verify_one(path, public_key, require_end, repin)
        # reported whatever the chain says
        agreed = _witnessed(path, logs) if witness else _countersigned(path)
        broken = broken or not (intact and agreed)
    if broken:
        raise typer.Exit(1)


def _witness_logs(paths: list[Path]) -> list[WitnessLog]:
    from medsilo.ledger.witness_verify import WitnessLog, witness_files

    files = witness_files(paths)
    if paths and not files:
        raise _fail(f"no witness file in {', '.join(map(str, paths))}")
    try:
        return [WitnessLog.read(path) for path in files]
    except (OSError, ValueError) as err:
        raise _fail(f"cannot read a witness file: {err}") from None


def _ledger_and_pins(path: Path) -> tuple[list[LedgerRecord], WitnessKeys | None]:
    """The ledger's records and the witness keys pinned beside it (exit 2 if unreadable)."""
    from medsilo.ledger.store import open_readonly, read_records
    from medsilo.ledger.witness_keys import WitnessKeys

    try:
        pins = WitnessKeys.read(path.parent)
    except (OSError, ValueError) as err:
        raise _fail(f"cannot read the pinned witness keys: {err}") from None
    conn = open_readonly(path)
    try:
        return list(read_records(conn)), pins
    finally:
        conn.close()


def _print_findings(findings: list[WitnessFinding]) -> None:
    for finding in findings:
        out.print(f"[bold red]WITNESS[/] {finding.describe()}", soft_wrap=True)


def _countersigned(path: Path) -> bool:
    """Without witness files: each ``witness`` record under its site's pinned key."""
    from medsilo.ledger.witness import WITNESS_KIND
    from medsilo.ledger.witness_keys import WITNESS_KEYS_FILE
    from medsilo.ledger.witness_verify import check_countersignatures

    records, pins = _ledger_and_pins(path)
    count = sum(r.kind == WITNESS_KIND for r in records)
    if not count:
        return True
    findings = check_countersignatures(records, pins)
    _print_findings(findings)
    if pins is None:
        _no_pins()
    elif not findings:
        out.print(
            f"countersignatures: {count} ledgered, each under its site's key pinned in "
            f"{WITNESS_KEYS_FILE} (hold them against the sites' files with --witness)",
            soft_wrap=True,
        )
    return not findings


def _no_pins() -> None:
    from medsilo.ledger.witness_keys import WITNESS_KEYS_FILE

    out.print(
        f"[bold yellow]NOT CHECKED[/]: the countersignatures against the sites' pinned keys "
        f"(no {WITNESS_KEYS_FILE} beside the ledger; copy it from the run folder)",
        soft_wrap=True,
    )


def _witnessed(path: Path, logs: list[WitnessLog]) -> bool:
    """Print what the sites' witness files say about the ledger at ``path``, and which of
    the run's sites no file was given for."""
    from medsilo.ledger.witness_verify import check_witnesses, unchecked_sites

    records, pins = _ledger_and_pins(path)
    findings = check_witnesses(records, logs, pins)
    _print_findings(findings)
    if pins is None:
        _no_pins()
    unchecked = unchecked_sites(records, logs, pins)
    for site in unchecked:
        out.print(
            f"[bold yellow]NOT CHECKED[/]: site {site} (no witness file given): what it "
            "witnessed was not held against this ledger",
            soft_wrap=True,
        )
    if not findings:
        last = max((int(h["seq"]) for log in logs for h in log.heads), default=0)
        sites = ", ".join(sorted(log.site for log in logs))
        partial = f" ({len(unchecked)} site(s) of the run not checked)" if unchecked else ""
        out.print(
            f"[bold green]WITNESSED[/]: every record site(s) {sites} saw (up to seq {last}) is "
            f"in this ledger, under the key they saw{partial}",
            soft_wrap=True,
        )
    return not findings


def _verify_one(path: Path, public_key: Path | None, require_end: bool, repin: bool) -> bool:
    from medsilo.ledger.keys import load_public_key
    from medsilo.ledger.verify import verify_ledger

    key_path = public_key or path.parent / PUBLIC_KEY_FILE
    try:
        key = load_public_key(key_path)
    except (OSError, ValueError) as err:
        raise _fail(f"cannot read public key {key_path}: {err}") from None
    result = verify_ledger(path, key, require_end)
    out.print(
        f"ledger {path}: {result.records} record(s); key sha256 {result.public_key_sha256}",
        soft_wrap=True,
    )
    for note in result.warnings:
        out.print(f"[yellow]warning:[/] {note}", soft_wrap=True)
    if not _key_is_trusted(path, public_key, result.public_key_sha256, result.ok, repin):
        return False
    if result.problem is not None:
        out.print(f"[bold red]BROKEN[/] at {result.problem.describe()}", soft_wrap=True)
        out.print(f"{result.verified} record(s) before it verified", soft_wrap=True)
        return False
    out.print(
        f"[bold green]OK[/]: {result.verified} record(s) verified; head {result.head_hash}",
        soft_wrap=True,
    )
    return True


def _key_is_trusted(
    path: Path, public_key: Path | None, fingerprint: str, chain_ok: bool, repin: bool
) -> bool:
    """Check the verifying key against the ledger's pin (docs/audit-ledger.md, trust)."""
    from medsilo.ledger.trust import TrustStore, check_and_pin

    source = f"--public-key {public_key}" if public_key else f"{PUBLIC_KEY_FILE} beside the ledger"
    try:
        check = check_and_pin(
            TrustStore(), path, fingerprint, source,
            beside=public_key is None, chain_ok=chain_ok, repin=repin,
        )  # fmt: skip
    except (OSError, ValueError) as err:
        raise _fail(f"cannot use the trust store: {err}") from None
    if not check.ok:
        out.print(f"[bold red]UNTRUSTED KEY[/]: {check.message}", soft_wrap=True)
    elif check.loud:
        out.print(f"[bold yellow]WARNING:[/] {check.message}", soft_wrap=True)
    else:
        out.print(f"trust: {check.message}", soft_wrap=True)
    return check.ok


def show(
    target: Annotated[Path, typer.Argument(help="a run directory or a ledger.sqlite file")],
) -> None:
    """List the ledger's records as stored (unverified; run ``audit verify`` to check)."""
    from medsilo.ledger.store import open_readonly, read_records

    path = ledger_path(target)
    table = Table(title=f"audit ledger {path} (unverified listing)")
    for col in ("seq", "time (UTC)", "kind", "summary", "hash"):
        table.add_column(col, justify="right" if col == "seq" else "left")
    conn = open_readonly(path)
    try:
        for rec in read_records(conn):
            table.add_row(
                str(rec.seq), rec.timestamp[:19], rec.kind, _summary(rec.payload), rec.hash[:12]
            )
    finally:
        conn.close()
    out.print(table)


def _summary(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return "(unreadable payload)"
    if not isinstance(data, dict):
        return "(not an object)"
    parts = []
    for key in ("round", "name", "site", "algorithm", "aggregation_rule", "epsilon", "verified"):
        if key in data:
            parts.append(f"{key}={data[key]}")
    hashes = {
        "global_model_sha256": "model",
        "final_model_sha256": "final_model",
        "config_sha256": "config",
        "public_key_sha256": "key",
    }
    for key, label in hashes.items():
        if data.get(key):
            parts.append(f"{label}={str(data[key])[:12]}")
    if data.get("sites"):
        parts.append(f"sites={len(data['sites'])}")
    if data.get("rejected"):
        parts.append("rejected=" + ",".join(r.get("site", "?") for r in data["rejected"]))
    return " ".join(parts)
