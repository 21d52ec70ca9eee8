"""The page's drawing code run in Node with stand-ins for the DOM and Plotly: whole-number
ticks on round and count axes, loss and norm charts on their clipped range, and a grey
"none" placeholder when there are no alerts. Skipped where ``node`` is not installed (the
slow browser test checks the real page in chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from medsilo.dashboard.state import DashboardState

SITE_HEALTH = {"a": {"train_loss": 0.4, "update_norm": 0.3, "num_examples": 50}}

HARNESS = """
const fs = require("fs");
const [page, statePath] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(statePath, "utf8"));
const els = {};
const el = (id) => (els[id] ??= { id, textContent: "", children: [], className: "",
  dataset: {}, replaceChildren(...c) { this.children = c; },
  appendChild(c) { this.children.push(c); } });
let made = 0;
global.document = { getElementById: el, querySelector: el, createElement: (t) => el(t + made++) };
const layouts = {};
global.Plotly = { react: (id, data, layout) => { layouts[id] = layout; } };
global.setTimeout = () => {};
const script = fs.readFileSync(page, "utf8");
const code = script.slice(script.indexOf("<script>") + 8, script.lastIndexOf("</script>"));
eval(code.replace(/\\npoll\\(\\);/, "") + "\\ndraw(state);");
const alerts = el("alerts").children.map((c) => ({ cls: c.className, text: c.textContent }));
console.log(JSON.stringify({ layouts, alerts }));
"""


def _drawn(tmp_path: Path, rounds: int) -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    records = [
        {"round": r, "test": {"accuracy": 0.7, "loss": 0.5}, "site_health": SITE_HEALTH}
        for r in range(1, rounds + 1)
    ]
    (tmp_path / "rounds.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in records))
    state = tmp_path / "state.json"
    state.write_text(json.dumps(DashboardState(tmp_path, seed=0).snapshot()))
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    page = resources.files("medsilo.dashboard").joinpath("page.html")
    out = subprocess.run(
        [node, str(harness), str(page), str(state)], capture_output=True, text=True, check=True
    )
    drawn: dict[str, object] = json.loads(out.stdout)
    return drawn


@pytest.mark.parametrize(("rounds", "step"), [(3, 1), (40, 5)])
def test_round_axes_tick_whole_rounds_and_ranges_are_clipped(
    tmp_path: Path, rounds: int, step: int
) -> None:
    drawn = _drawn(tmp_path, rounds)
    layouts = drawn["layouts"]
    assert isinstance(layouts, dict)
    for chart in ("accuracy-round", "bytes", "epsilon", "site-loss", "site-norm", "counts"):
        xaxis = layouts[f"chart-{chart}"]["xaxis"]
        assert xaxis["tickmode"] == "linear" and xaxis["dtick"] == step, chart
    assert layouts["chart-site-loss"]["yaxis"]["range"] == [0, pytest.approx(2.1)]
    assert layouts["chart-site-norm"]["yaxis"]["range"] == [0, pytest.approx(2.1)]
    assert float(layouts["chart-norm-hist"]["yaxis"]["dtick"]).is_integer()
    assert drawn["alerts"] == [{"cls": "none", "text": "none"}]


def test_the_none_placeholder_is_not_styled_as_an_alert() -> None:
    page = resources.files("medsilo.dashboard").joinpath("page.html").read_text("utf-8")
    assert "#alerts li.none" in page and '<li class="none">none</li>' in page
