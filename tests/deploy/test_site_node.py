"""``medsilo site start``: the SuperNode command line parses with Flower's own parser to the
kit's files, and the supervisor restarts a refused or disconnected SuperNode but gives up
on one that keeps failing for another reason."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from flwr.common.config import parse_config_args
from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode

from medsilo.config import ConfigError
from medsilo.deploy.kits import Kit
from medsilo.deploy.site_node import SiteLaunch, refusals, run_site, site_launch

LAUNCHER = [sys.executable, "-m", "medsilo.deploy.supernode_launcher"]


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


@pytest.mark.parametrize("folder", ["hospital data", 'quoted "b"', "back\\slash 'b'"])
def test_supernode_argv_parses_to_the_kits_files(
    provisioned: tuple[Path, list[Kit]], tmp_path: Path, folder: str
) -> None:
    out, _ = provisioned
    kit = out / "sites" / "site-b"
    data = tmp_path / folder
    data.mkdir()
    launch = site_launch(kit, data, runtime_port=9123, platform="sev-snp", tcb_version="7")
    ours, flowers = _split(launch.argv)
    assert ours == [*LAUNCHER, "--warm", "--poll-interval", "0.2"]
    node = _parse_args_run_supernode().parse_args(flowers)
    assert node.superlink == "coord.example.org:8443" == launch.coordinator
    assert Path(node.root_certificates) == kit.resolve() / "ca.crt"
    assert Path(node.auth_supernode_private_key) == kit.resolve() / "node.key"
    assert not node.insecure and node.port == 9123 and node.host == "127.0.0.1"
    # Flower's own node-config parser gives the deployed ClientApp what it reads.
    assert parse_config_args([node.node_config]) == {
        "site": "site-b",
        "kit": str(kit.resolve()),
        "data": str(data.resolve()),
        "platform": "sev-snp",
        "tcb-version": "7",
    }
    assert launch.site == "site-b"
    assert launch.env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert launch.env["FLWR_HOME"] == str(kit.resolve() / "flower-home")


def test_insecure_launch_carries_no_keys(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    kit = out / "sites" / "site_a"
    launch = site_launch(kit, None, insecure=True, poll_interval_s=None, warm=False)
    ours, flowers = _split(launch.argv)
    assert ours == LAUNCHER
    assert "--insecure" in flowers
    assert "--root-certificates" not in flowers
    assert "--auth-supernode-private-key" not in flowers
    node = _parse_args_run_supernode().parse_args(flowers)
    assert node.insecure and node.root_certificates is None
    assert node.auth_supernode_private_key is None
    assert 1 <= node.port <= 65535  # a free port was chosen
    assert parse_config_args([node.node_config]) == {"site": "site_a", "kit": str(kit.resolve())}


def test_missing_data_path_is_refused(provisioned: tuple[Path, list[Kit]], tmp_path: Path) -> None:
    out, _ = provisioned
    with pytest.raises(FileNotFoundError, match="--data"):
        site_launch(out / "sites" / "site_a", tmp_path / "no-such-data")


def test_data_path_flower_cannot_carry_is_refused(
    provisioned: tuple[Path, list[Kit]], tmp_path: Path
) -> None:
    out, _ = provisioned
    data = tmp_path / """both ' and " quotes"""
    data.mkdir()
    with pytest.raises(ConfigError, match="node-config"):
        site_launch(out / "sites" / "site_a", data)


# --- the supervisor -----------------------------------------------------------------------


def _child(tmp_path: Path, body: str) -> tuple[SiteLaunch, Path]:
    """A stand-in SuperNode: a tiny script that counts its starts in a file."""
    counter = tmp_path / "starts"
    script = f"open({str(counter)!r}, 'a').write('x')\n{body}"
    argv = [sys.executable, "-c", script]
    return SiteLaunch(argv, dict(os.environ), "site_a", "127.0.0.1:1"), counter


def _starts(counter: Path) -> int:
    return len(counter.read_text()) if counter.exists() else 0


PAUSE_S = 0.01  # instead of 2 s, doubling


def test_refused_activation_is_restarted(tmp_path: Path) -> None:
    launch, counter = _child(
        tmp_path,
        "print('ERROR : Failed to activate SuperNode. Exit Code: 305')\nraise SystemExit(1)",
    )
    said: list[str] = []
    # One quick failure would end supervision; a refusal does not count as one.
    code = run_site(
        launch,
        say=said.append,
        max_attempts=3,
        max_quick_failures=1,
        max_pause_s=PAUSE_S,
        initial_pause_s=PAUSE_S,
    )
    assert code == 1
    assert _starts(counter) == 3
    assert len(said) == 2
    assert all("refused" in text and "site_a" in text for text in said)


def test_quick_failures_end_supervision_with_the_exit_code(tmp_path: Path) -> None:
    launch, counter = _child(tmp_path, "print('broken kit')\nraise SystemExit(4)")
    said: list[str] = []
    code = run_site(
        launch, say=said.append, max_quick_failures=3, max_pause_s=PAUSE_S, initial_pause_s=PAUSE_S
    )
    assert code == 4
    assert _starts(counter) == 3
    assert len(said) == 2
    assert all("exited with code 4" in text and "refused" not in text for text in said)


def test_unauthorized_after_a_coordinator_restart_is_restarted(tmp_path: Path) -> None:
    launch, counter = _child(
        tmp_path, "print('heartbeat failed: 401 Unauthorized', flush=True)\nraise SystemExit(0)"
    )
    said: list[str] = []
    code = run_site(
        launch,
        say=said.append,
        max_attempts=2,
        max_quick_failures=1,
        max_pause_s=PAUSE_S,
        initial_pause_s=PAUSE_S,
    )
    assert code == 0
    assert _starts(counter) == 2
    assert len(said) == 1 and "refused" in said[0]


def test_a_401_from_the_sites_own_runtime_is_not_the_coordinators_refusal() -> None:
    """Seen after a coordinator restart: the site's ClientApp of the stopped run is refused by
    its own SuperNode, which carries on (the coordinator did not refuse the node)."""
    stopped_task = (
        "ERROR :     Failed to push task output: Client error '401 Unauthorized' for url "
        "'http://127.0.0.1:37123/v1/runtime/push-task-output'\n"
    )
    heartbeat = (
        "Client error '401 Unauthorized' for url "
        "'https://coordinator:9092/api/v0/fleet/send-node-heartbeat'\n"
    )
    assert refusals(stopped_task) == []
    assert refusals(stopped_task + heartbeat + "Exit Code: 305\n") == [
        "401 Unauthorized",
        "Exit Code: 305",
    ]


def test_a_site_behind_a_proxy_says_the_proxy_may_have_refused_it(tmp_path: Path) -> None:
    refused = "print('403 Access violation; Exit Code: 305')\nraise SystemExit(1)"
    launch, _ = _child(tmp_path, refused)
    launch = replace(launch, proxy="http://10.0.0.8:3128")
    said: list[str] = []
    run_site(launch, say=said.append, max_attempts=2, max_pause_s=PAUSE_S, initial_pause_s=PAUSE_S)
    assert len(said) == 1 and "the proxy http://10.0.0.8:3128 refused the tunnel" in said[0]
