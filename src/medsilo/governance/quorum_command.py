"""``medsilo governance ...``: the council's votes and their execution (docs/governance.md).

``retire``, ``remove-site`` and ``admit-site`` execute approved proposals (coordinator side).

``propose`` is run by the coordinator (it appends to the governance ledger with the
coordinator's key); ``approve`` by a council member on its own machine with its site kit (its
private key never leaves it), writing an approval file into the decisions folder (shared, or
mailed to the coordinator and dropped there); ``status`` by anyone with the folder and a
council file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from medsilo.config import ConfigError, load_config
from medsilo.deploy.kit_files import ROSTER_FILE, load_roster, load_site_identity
from medsilo.governance.council import COUNCIL_FILE, Council, load_council
from medsilo.governance.decisions import APPROVALS_DIR, DecisionBook, recorded_problems
from medsilo.governance.membership import (
    MembershipAction,
    change_membership,
    membership_proposal,
)
from medsilo.governance.proposal import Proposal, ProposalError, sign_approval, write_json
from medsilo.governance.retire_gate import retire_proposal, retire_with_quorum
from medsilo.governance.run_gate import start_run_proposal

governance_app = typer.Typer(
    help="Council decisions: propose an action, approve it, see what is approved.",
    no_args_is_help=True,
)

DecisionsArg = Annotated[Path, typer.Argument(help="the decisions folder")]
CouncilOpt = Annotated[Path, typer.Option(help="the council.json written by `medsilo provision`")]
AuthorityOpt = Annotated[
    Path, typer.Option(help="the federation's ca.crt, which must have signed the council file")
]


def _fail(err: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}")
    return typer.Exit(2)


def _roster(council_file: Path) -> tuple[str, ...]:
    """The federation's sites, from the roster beside the council file (the coordinator kit)."""
    if not (council_file.parent / ROSTER_FILE).is_file():
        raise ConfigError(
            f"no {ROSTER_FILE} beside {council_file}: a site is named against the federation's "
            "roster, so give --council the coordinator kit's council.json"
        )
    return load_roster(council_file.parent).sites


def _proposal(
    council: Council, council_file: Path, subjects: dict[str, Path | str | None]
) -> Proposal:
    given = {option: value for option, value in subjects.items() if value is not None}
    if len(given) != 1:
        raise ConfigError(
            "give exactly one of --config (start a run), --run (retire its model), "
            "--remove-site or --admit-site (a site of the federation)"
        )
    ((option, value),) = given.items()
    if option == "config":
        return start_run_proposal(load_config(Path(value)), council)
    if option == "run":
        return retire_proposal(Path(value), council)
    action: MembershipAction = "remove_site" if option == "remove_site" else "admit_site"
    return membership_proposal(council, _roster(council_file), action, str(value))


@governance_app.command("propose")
def propose(
    decisions: DecisionsArg,
    council: CouncilOpt,
    authority: AuthorityOpt,
    config: Annotated[
        Path | None, typer.Option(help="start_run: the experiment whose runs may start")
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="retire_model: the finished run whose model to retire")
    ] = None,
    remove_site: Annotated[
        str | None, typer.Option(help="remove_site: the site to remove from the federation")
    ] = None,
    admit_site: Annotated[
        str | None, typer.Option(help="admit_site: the removed site to re-admit")
    ] = None,
) -> None:
    """File a proposal (coordinator side); print its id for the members to approve.
    --remove-site/--admit-site read the roster (federation.json) beside --council."""
    try:
        members = load_council(council, authority)
        subjects = {
            "config": config,
            "run": run,
            "remove_site": remove_site,
            "admit_site": admit_site,
        }
        proposal = _proposal(members, council, subjects)
        path = DecisionBook(decisions, members).propose(proposal)
    except (ConfigError, ValueError) as err:
        raise _fail(err) from None
    typer.echo(f"proposal {proposal.proposal_id()}: {proposal.describe()}")
    needed = f"{members.threshold} approvals from: {', '.join(members.members)}"
    typer.echo(f"written to {path}; it needs {needed}")


@governance_app.command("approve")
def approve(
    decisions: DecisionsArg,
    proposal: Annotated[str, typer.Argument(help="the proposal id (or a unique prefix)")],
    kit: Annotated[Path, typer.Option(help="this member's site kit (site.txt, attest.key)")],
) -> None:
    """Sign an approval of a proposal with this site kit's key (member side)."""
    try:
        identity = load_site_identity(kit)
        council = load_council(kit / COUNCIL_FILE, kit / "ca.crt")
        chosen = DecisionBook(decisions, council).find(proposal)
        approval = sign_approval(identity.attest_private_key(), chosen, identity.name, council)
        name = f"{chosen.proposal_id()[:16]}.{identity.name}.json"
        path = decisions / APPROVALS_DIR / name
        if path.exists():
            raise ProposalError(f"{identity.name} already approved this proposal ({path})")
        write_json(path, approval)
    except (ConfigError, ValueError) as err:
        raise _fail(err) from None
    typer.echo(f"{identity.name} approved {chosen.describe()}: {path}")


@governance_app.command("status")
def status(decisions: DecisionsArg, council: CouncilOpt, authority: AuthorityOpt) -> None:
    """Every proposal with its counted, refused and missing approvals; recorded decisions
    re-checked against the council."""
    try:
        members = load_council(council, authority)
        book = DecisionBook(decisions, members)
        proposals = book.proposals()
        unreadable = book.votes()[1]
        executed = book.executed()
        problems = recorded_problems(book.records(), members)
    except (ConfigError, ValueError) as err:
        raise _fail(err) from None
    for item in proposals:
        count = book.tally(item, executed)
        state = "APPROVED" if count.met else "pending"
        state = "executed" if count.executed_seq is not None else state
        typer.echo(
            f"{count.proposal_id[:16]}  {item.describe()}  {state}  "
            f"{len(count.counted)}/{count.threshold}  approved by: "
            f"{', '.join(count.counted) or '-'}  missing: {', '.join(count.missing) or '-'}"
        )
        for refused in count.refused:
            typer.echo(f"    refused {refused.source}: {refused.reason}")
    for refused in unreadable:
        typer.echo(f"unreadable approval {refused.source}: {refused.reason}")
    if not proposals:
        typer.echo(f"no proposals in {decisions}")
    for problem in problems:
        typer.echo(f"recorded decision without quorum: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


@governance_app.command("retire")
def retire_command(
    run: Annotated[Path, typer.Argument(help="the finished run whose model to retire")],
    decisions: Annotated[Path, typer.Option(help="the decisions folder")],
    council: CouncilOpt,
    authority: AuthorityOpt,
    reason: Annotated[str, typer.Option(help="why, as RETIRED.json will say")],
    replacement: Annotated[Path | None, typer.Option(help="the run that replaces it")] = None,
) -> None:
    """Retire a run's model once the council approved a ``retire_model`` proposal for it."""
    try:
        members = load_council(council, authority)
        decision = retire_with_quorum(run, members, decisions, reason, replacement)
    except (ConfigError, ValueError) as err:
        raise _fail(err) from None
    approvers = ", ".join(a.member for a in decision.approvals)
    typer.echo(f"{run} retired (approved by {approvers}; decision record {decision.ledger_seq})")


def _membership(
    action: MembershipAction, decisions: Path, site: str, council: Path, authority: Path
) -> None:
    try:
        members = load_council(council, authority)
        decision = change_membership(decisions, members, _roster(council), action, site)
    except (ConfigError, ValueError) as err:
        raise _fail(err) from None
    approvers = ", ".join(a.member for a in decision.approvals)
    done = "removed from" if action == "remove_site" else "re-admitted to"
    typer.echo(
        f"site {site} {done} the federation (approved by {approvers}; decision record "
        f"{decision.ledger_seq})"
    )


SiteArg = Annotated[str, typer.Argument(help="the site (as on the federation's roster)")]


@governance_app.command("remove-site")
def remove_site_command(
    decisions: DecisionsArg, site: SiteArg, council: CouncilOpt, authority: AuthorityOpt
) -> None:
    """Remove a site once the council approved a ``remove_site`` proposal for it: the
    deployed coordinator then refuses it at enrolment. The roster is read beside --council."""
    _membership("remove_site", decisions, site, council, authority)


@governance_app.command("admit-site")
def admit_site_command(
    decisions: DecisionsArg, site: SiteArg, council: CouncilOpt, authority: AuthorityOpt
) -> None:
    """Re-admit a removed site once the council approved an ``admit_site`` proposal for it."""
    _membership("admit_site", decisions, site, council, authority)
