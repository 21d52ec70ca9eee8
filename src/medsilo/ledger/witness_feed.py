"""The coordinator's side of witnessing: what each site is shown; its countersignatures ledgered.

:meth:`WitnessFeed.proofs` gives each site the records after the last head it countersigned
(at least the current head, so a site with nothing new confirms it again); the round loop
sends them with the round's training message (:class:`~medsilo.runtime.federation.RoundLoop`),
and the run's owner once more after ``run_end`` (:meth:`WitnessFeed.final`), so the sites'
last heads are the run's end. :meth:`WitnessFeed.record` appends each countersignature as a
``witness`` record, so the ledger holds the sites' signatures beside the coordinator's.
Only a countersignature under the key pinned for its site and naming this run is ledgered
(:class:`~medsilo.ledger.witness_keys.WitnessKeys`, set by :meth:`WitnessFeed.pin` when the
run starts); before any pin, none is.

Which head a site last countersigned is read back from the ledger's ``witness`` records when
the feed opens, so a coordinator that restarts (a resumed run) sends only what is new.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping

from medsilo.ledger.store import Ledger
from medsilo.ledger.witness import WITNESS_KIND, Countersignature, HeadProof
from medsilo.ledger.witness_keys import WitnessKeys

log = logging.getLogger(__name__)

#: ``(head proof per site) -> countersignature per site that answered``: how a runtime
#: reaches its sites once more after ``run_end``.
Exchange = Callable[[Mapping[str, HeadProof]], Mapping[str, Countersignature]]


class WitnessFeed:
    """Head proofs out, countersignatures in, over the coordinator's open :class:`Ledger`."""

    def __init__(self, ledger: Ledger, pins: WitnessKeys | None = None) -> None:
        self.ledger = ledger
        self.pins = pins
        self.acknowledged: dict[str, int] = {}  # site -> seq of the head it countersigned
        for record in ledger.records():
            if record.kind == WITNESS_KIND:
                payload = json.loads(record.payload)
                self.acknowledged[str(payload["site"])] = int(payload["seq"])

    def pin(self, pins: WitnessKeys) -> None:
        """Accept countersignatures under these keys (and this run) only."""
        self.pins = pins

    def proofs(self, sites: Iterable[str]) -> dict[str, HeadProof]:
        wanted = list(sites)
        if not wanted:
            return {}
        oldest = min(self.acknowledged.get(s, 0) for s in wanted)
        tail = self.ledger.records_after(oldest)
        head_seq = tail[-1].seq if tail else oldest
        if not tail:  # every site already has the head: show it once more
            tail = self.ledger.records_after(head_seq - 1)
        out = {}
        for site in wanted:
            after = min(self.acknowledged.get(site, 0), head_seq - 1)
            out[site] = HeadProof(tuple(r for r in tail if r.seq > after))
        return out

    def record(self, rnd: int | None, signatures: Mapping[str, Countersignature]) -> None:
        """Ledger each site's countersignature (``rnd``: the round whose message carried the
        head, ``None`` after ``run_end``). One that is not under its site's pinned key, does
        not verify, or is over a head this ledger does not hold, is logged and left out."""
        for site, signature in signatures.items():
            problem = self._problem(site, signature)
            if problem is not None:
                log.warning("countersignature of site %s left out: %s", site, problem)
                continue
            self.ledger.append(WITNESS_KIND, signature.payload(rnd))
            self.acknowledged[site] = signature.seq

    def final(self, sites: Iterable[str], exchange: Exchange) -> None:
        """After ``run_end``: every site witnesses the final head."""
        self.record(None, exchange(self.proofs(sites)))

    def _problem(self, site: str, signature: Countersignature) -> str | None:
        if signature.site != site:
            return f"it names site {signature.site!r}"
        if self.pins is None:
            return "no witness keys are pinned for this run"
        pinned = self.pins.problem(signature)
        if pinned is not None:
            return pinned
        stored = self.ledger.record_at(signature.seq)
        if stored is None or stored.seq != signature.seq or stored.hash != signature.hash:
            return f"it is over seq {signature.seq} hash {signature.hash[:16]}..., not this ledger"
        return None
