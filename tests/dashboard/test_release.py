import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from medsilo.dashboard.app import create_app
from medsilo.dashboard.release import HealthReleaser, ReleasePolicy, into_domain
from medsilo.dashboard.release_store import RELEASES
from medsilo.dashboard.state import DashboardState


@pytest.mark.parametrize("epsilon", [1.0, 10.0])
def test_noise_scale_matches_the_laplace_calibration(epsilon: float) -> None:
    policy = ReleasePolicy(epsilon=epsilon, loss_clip=2.0, norm_clip=4.0)
    releaser = HealthReleaser(policy, seed=0)
    raw = {"train_loss": 1.0, "update_norm": 2.0, "num_examples": 500}
    rows = [releaser.release(r, "a", raw) for r in range(20000)]
    for quantity, expected_b in (
        ("train_loss", 2.0 / (epsilon / 3)),
        ("update_norm", 4.0 / (epsilon / 3)),
    ):
        noise = np.array([row[quantity] for row in rows], dtype=float) - raw[quantity]
        # Laplace(b): mean |x| = b, std = sqrt(2) b
        assert np.mean(np.abs(noise)) == pytest.approx(expected_b, rel=0.04)
        assert np.std(noise) == pytest.approx(np.sqrt(2) * expected_b, rel=0.06)
        assert abs(np.mean(noise)) < 0.05 * expected_b + 0.01
    counts = np.array([into_domain(row, policy)["num_examples"] for row in rows], dtype=float)
    assert np.mean(np.abs(counts - 500)) == pytest.approx(
        np.mean(np.abs(np.round(np.random.default_rng(1).laplace(0, 3 / epsilon, 20000)))),
        rel=0.08,
        abs=0.02,
    )


def test_a_release_is_drawn_once_so_polling_cannot_average_the_noise_away() -> None:
    releaser = HealthReleaser(ReleasePolicy(), seed=3)
    raw = {"train_loss": 0.5, "update_norm": 0.3, "num_examples": 40}
    assert releaser.release(1, "a", raw) == releaser.release(1, "a", raw)
    assert releaser.release(1, "a", raw) != releaser.release(2, "a", raw)


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        ReleasePolicy(epsilon=0)


RAW = {
    "alpha": {"train_loss": 0.123456789, "update_norm": 0.987654321, "num_examples": 98765},
    "beta": {"train_loss": 0.555555551, "update_norm": 0.444444441, "num_examples": 54321},
}


def _record(rnd: int) -> dict[str, object]:
    return {
        "round": rnd,
        "sites": list(RAW),
        "train_loss": 0.31415926,
        "bytes_up": 100,
        "bytes_up_site": {"alpha": 51, "beta": 49},
        "bytes_down": 200,
        "sim_clock_s": 0.5 * rnd,
        "test": {"accuracy": 0.75, "loss": 0.5, "n": 10},
        "per_site": {"alpha": {"accuracy": 0.27182818, "loss": 0.1, "n": 5}},
        "site_health": RAW,
    }


def test_api_state_shows_rounds_and_noised_health_but_no_raw_site_value(tmp_path: Path) -> None:
    (tmp_path / "rounds.jsonl").write_text(
        "".join(json.dumps(_record(r)) + "\n" for r in (1, 2, 3))
    )
    client = TestClient(create_app(DashboardState(tmp_path, seed=0)))
    body = client.get("/api/state")
    assert body.status_code == 200
    state = body.json()
    assert state["latest_round"] == 3 and state["status"] == "running"
    assert [r["accuracy"] for r in state["rounds"]] == [0.75] * 3
    assert set(state["sites"]) == {"alpha", "beta"}
    text = body.text
    raw_floats = [site[q] for site in RAW.values() for q in ("train_loss", "update_norm")]
    for value in [*raw_floats, 0.31415926, 0.27182818]:  # + mean train loss, per-site eval
        assert str(value) not in text
    assert '"bytes_up_site"' not in text and '"per_site"' not in text
    counts = [
        (row["num_examples"], RAW[s]["num_examples"]) for s in RAW for row in state["sites"][s]
    ]
    assert any(released != raw for released, raw in counts)  # noise b = 0.3 at epsilon 10
    for site, rows in state["sites"].items():
        assert len(rows) == 3
        assert all(row["train_loss"] != RAW[site]["train_loss"] for row in rows)
    assert state["privacy"]["epsilon_spent_per_site"] == {"alpha": 30.0, "beta": 30.0}
    again = client.get("/api/state").json()
    assert again["sites"] == state["sites"]  # cached release, no fresh noise


def test_page_and_local_plotly_are_served(tmp_path: Path) -> None:
    client = TestClient(create_app(DashboardState(tmp_path, seed=0)))
    page = client.get("/")
    assert page.status_code == 200 and "/static/plotly.js" in page.text
    js = client.get("/static/plotly.js")
    assert js.status_code == 200 and "plotly" in js.text[:2000].lower()
    assert client.get("/api/state").json()["status"] == "waiting"


def test_state_grows_with_the_run_and_keeps_earlier_releases(tmp_path: Path) -> None:
    path = tmp_path / "rounds.jsonl"
    path.write_text(json.dumps(_record(1)) + "\n" + json.dumps(_record(2))[:20])
    client = TestClient(create_app(DashboardState(tmp_path, seed=0)))
    first = client.get("/api/state").json()
    assert first["latest_round"] == 1
    with path.open("a") as fh:
        fh.write(json.dumps(_record(2))[20:] + "\n")
    (tmp_path / "summary.json").write_text("{}")
    later = client.get("/api/state").json()
    assert later["latest_round"] == 2 and later["status"] == "done"
    assert later["sites"]["alpha"][0] == first["sites"]["alpha"][0]
    (tmp_path / "summary.json").write_text('{"complete": false}')  # an interrupted run's
    assert client.get("/api/state").json()["status"] == "stopped"


def _write_rounds(run: Path, rounds: range, raw: dict[str, dict[str, float]] = RAW) -> None:
    records = [{**_record(r), "site_health": raw} for r in rounds]
    (run / "rounds.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in records))


def test_a_restarted_dashboard_shows_the_same_releases_and_keeps_the_budget(
    tmp_path: Path,
) -> None:
    _write_rounds(tmp_path, range(1, 4))
    first = DashboardState(tmp_path).snapshot()  # OS-entropy noise
    restarted = DashboardState(tmp_path).snapshot()
    assert restarted["sites"] == first["sites"]  # no fresh noise to average over restarts
    assert restarted["privacy"]["epsilon_spent_per_site"] == {"alpha": 30.0, "beta": 30.0}
    seeded = DashboardState(tmp_path, seed=7).snapshot()  # another seed changes nothing stored
    assert seeded["sites"] == first["sites"]
    _write_rounds(tmp_path, range(1, 5))
    grown = DashboardState(tmp_path).snapshot()
    assert grown["sites"]["alpha"][:3] == first["sites"]["alpha"]
    assert grown["privacy"]["epsilon_spent_per_site"] == {"alpha": 40.0, "beta": 40.0}
    stored = (tmp_path / RELEASES).read_text().splitlines()
    assert len(stored) == 8  # 4 rounds x 2 sites, each drawn once


def test_a_different_run_in_the_same_directory_is_released_anew_and_costs_budget(
    tmp_path: Path,
) -> None:
    _write_rounds(tmp_path, range(1, 3))
    before = DashboardState(tmp_path).snapshot()
    other = {site: {**values, "train_loss": 0.25} for site, values in RAW.items()}
    _write_rounds(tmp_path, range(1, 3), other)
    after = DashboardState(tmp_path).snapshot()
    assert after["sites"]["alpha"] != before["sites"]["alpha"]
    assert after["privacy"]["epsilon_spent_per_site"] == {"alpha": 40.0, "beta": 40.0}


def test_a_seeded_restart_draws_no_noise_twice() -> None:
    raw = {"train_loss": 0.5, "update_norm": 0.5, "num_examples": 40}
    before, after = HealthReleaser(ReleasePolicy(), seed=3), HealthReleaser(ReleasePolicy(), seed=3)
    assert before.release(1, "a", raw) == after.release(1, "a", raw)  # the seed fixes a release
    # restarted after round 2 with the same seed: rounds 3 and 4 must not reuse 1 and 2's noise
    noise = [
        float(h.release(r, "a", raw)["train_loss"])  # type: ignore[arg-type]
        for h, rounds in ((before, (1, 2)), (after, (3, 4)))
        for r in rounds
    ]
    assert len(set(noise)) == 4


def test_released_values_are_shown_inside_their_domain(tmp_path: Path) -> None:
    raw = {"alpha": {"train_loss": 0.0, "update_norm": 0.0, "num_examples": 0}}
    _write_rounds(tmp_path, range(1, 41), raw)
    policy = ReleasePolicy(epsilon=0.5, loss_clip=2.0, norm_clip=1.5)
    rows = DashboardState(tmp_path, policy).snapshot()["sites"]["alpha"]
    assert len(rows) == 40
    assert all(0.0 <= row["train_loss"] <= 2.0 for row in rows)
    assert all(0.0 <= row["update_norm"] <= 1.5 for row in rows)
    assert all(row["num_examples"] >= 0 for row in rows)
    assert any(row["update_norm"] == 0.0 for row in rows)  # noise below 0 was clamped


def test_the_lead_clinical_metric_is_shown_per_round(tmp_path: Path) -> None:
    metrics = {"lead": "auroc", "pooled": {"auroc": 0.8125, "sensitivity": 0.5}}
    rec = {**_record(1), "metrics": metrics}
    (tmp_path / "rounds.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(_record(2)) + "\n")
    rounds = DashboardState(tmp_path).snapshot()["rounds"]
    assert [(r["lead_metric"], r["lead_value"]) for r in rounds] == [
        ("auroc", 0.8125),
        (None, None),
    ]
