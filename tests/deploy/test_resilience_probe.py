"""What counts as a SuperNode having reconnected after the coordinator was killed, on the log
shapes Flower 1.42 writes (the durable-restart test waits on it)."""

from __future__ import annotations

from medsilo.deploy.resilience_probe import reconnected

FAILED = "WARNING :   Connection attempt failed, retrying in 0.21 seconds\n"


def test_a_site_that_logs_the_successful_retry_has_reconnected() -> None:
    log = FAILED * 3 + "INFO :      Connection successful after 6.09 seconds and 4 tries.\n"
    assert reconnected(log)


def test_a_site_whose_retried_pull_found_the_old_run_stopped_has_reconnected() -> None:
    """Seen in CI: no "Connection successful" line; the retried request answered that the
    killed run is stopped, then the resumed run's enrolment arrived."""
    log = (
        "INFO :      Receiving: train message (ID: dc92)\n"
        + FAILED * 6
        + "INFO :      Run ID 2364 is not in `RUNNING` status. Ignoring message dc92.\n"
        + "INFO :      Receiving: query.enrol message (ID: e87f)\n"
    )
    assert reconnected(log)


def test_a_site_still_retrying_has_not_reconnected() -> None:
    assert not reconnected("INFO :      Receiving: train message (ID: dc92)\n" + FAILED * 4)
    assert not reconnected("")  # nothing failed yet: the kill has not been noticed
