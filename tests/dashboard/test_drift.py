import numpy as np

from medsilo.dashboard.drift import DriftDetector


def _alerts(values: np.ndarray, noise_var: float = 0.0) -> list[int]:
    detector = DriftDetector(noise_var={"train_loss": noise_var})
    rounds = []
    for rnd, value in enumerate(values, start=1):
        alert = detector.observe("site", "train_loss", rnd, float(value))
        if alert is not None:
            rounds.append(alert.round)
    return rounds


def test_alert_fires_on_a_shifted_site_and_not_on_a_stable_one() -> None:
    false_alarms, detected = 0, 0
    for seed in range(50):
        stable = 0.5 + np.random.default_rng(seed).normal(0, 0.05, 40)
        shifted = stable.copy()
        shifted[25:] += 0.6  # rounds 26.. (12 sigma away)
        false_alarms += bool(_alerts(stable))
        fired = [r for r in _alerts(shifted) if r > 25]
        detected += bool(fired) and fired[0] <= 28
    assert false_alarms <= 3  # |z| > 3 twice in a row by chance: rare
    assert detected == 50


def test_one_outlier_alone_does_not_alert_and_noise_floor_damps_small_jumps() -> None:
    rng = np.random.default_rng(8)
    values = 0.5 + rng.normal(0, 0.05, 30)
    values[20] += 1.0
    assert _alerts(values) == []
    shifted = values.copy()
    shifted[20] -= 1.0
    shifted[22:] += 0.3
    assert _alerts(shifted) != []
    assert _alerts(shifted, noise_var=2 * 0.5**2) == []  # within the release noise
