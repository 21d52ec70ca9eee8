"""A site's own record of the council decisions it accepted to start a run: one use each.

A recorded ``start_run`` decision stays valid to anyone who re-checks its signatures, so a
coordinator could send an old, already used one again (a *replay*) to start a second run of
the same config that the council approved once. The coordinator's governance ledger refuses
that, but it is the coordinator's; so each site keeps, in its kit, which run every decision
it accepted started: ``KIT/council-starts/<proposal id>.json`` holds the run key (the
coordinator's run folder and config, :func:`medsilo.runtime.flower.deployed_server.run_key`,
which also names the site's state of that run) and when. A decision already used for
another run key is refused; the same run key is the same run enrolling again (a resume, or
a start retried after the coordinator failed), which needs no new vote.

The file is made under a temporary name and linked to its final name, which fails if it
exists: two enrolments racing with one decision cannot both claim it, and a reader never
sees a half-written file.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from medsilo.governance.decisions import QuorumRefused

#: The folder of a site kit holding the decisions it accepted (module docstring).
STARTS_DIR = "council-starts"


def claim_run_start(site_kit: Path, proposal_id: str, run_key: str) -> None:
    """Record that ``proposal_id``'s decision starts run ``run_key`` at this site, or raise
    ``QuorumRefused`` when this site already used it for another run."""
    folder = site_kit / STARTS_DIR
    path = folder / f"{proposal_id}.json"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        used = {"proposal_id": proposal_id, "run_key": run_key, "accepted": _now()}
        tmp = folder / f".{proposal_id}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(used, indent=2) + "\n")
        try:
            os.link(tmp, path)
            return
        except FileExistsError:  # claimed meanwhile: judge that claim below
            pass
        finally:
            tmp.unlink()
    earlier = json.loads(path.read_text())
    if earlier["run_key"] != run_key:
        raise QuorumRefused(
            f"the coordinator replayed council decision {proposal_id[:16]}: this site already "
            f"used it to start run {earlier['run_key']} on {earlier['accepted']}, and run "
            f"{run_key} is another run, which needs its own start_run proposal and "
            "approvals: refusing to train"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
