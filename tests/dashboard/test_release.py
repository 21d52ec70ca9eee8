import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from medsilo.dashboard.app import create_app
from medsilo.dashboard.release import HealthReleaser, ReleasePolicy
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
    counts = np.array([row["num_examples"] for row in rows], dtype=float)
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
