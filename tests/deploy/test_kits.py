"""Kits hold exactly their files, keys load with Flower's own loaders, scripts parse with
Flower's own argument parsers, and existing kits are never overwritten without force."""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from flwr.cli.supernode.register import try_load_public_key
from flwr.superlink.cli.flower_superlink import _parse_args_run_superlink
from flwr.supernode.cli.flower_supernode import (
    _parse_args_run_supernode,
    _try_setup_client_authentication,
)

from medsilo.deploy.kits import (
    COORDINATOR_FILES,
    PRIVATE_FILES,
    SITE_FILES,
    Kit,
    KitExistsError,
    provision,
)
from medsilo.deploy.spec import FederationSpec
from medsilo.deploy.superlink_state import DATABASE, FLOWER_DIR

SITES = ("site_a", "site-b")


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_kits_contain_exactly_the_expected_files(provisioned: tuple[Path, list[Kit]]) -> None:
    out, kits = provisioned
    assert {p.name for p in out.iterdir()} == {"authority", "coordinator", "sites"}
    assert _files(out / "authority") == {"ca.crt", "ca.key"}
    assert _files(out / "coordinator") == set(COORDINATOR_FILES) | {
        f"site-keys/{site}.{kind}" for site in SITES for kind in ("pub", "attest.pub")
    }
    assert {p.name for p in (out / "sites").iterdir()} == set(SITES)
    for site in SITES:
        assert _files(out / "sites" / site) == set(SITE_FILES)
    # What the CLI lists is what is on disk.
    for kit in kits:
        assert set(kit.files) == _files(kit.path)


def test_private_keys_are_0600_and_scripts_executable(
    provisioned: tuple[Path, list[Kit]],
) -> None:
    out, _ = provisioned
    private = [out / "authority" / "ca.key", out / "coordinator" / "server.key"]
    private += [
        out / "sites" / site / name for site in SITES for name in ("node.key", "attest.key")
    ]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Exactly the files listed as private are 0600; everything else is readable.
    assert {p.name for p in out.rglob("*") if p.is_file() and p.stat().st_mode & 0o077 == 0} == (
        PRIVATE_FILES
    )
    for path in out.rglob("*.sh"):
        assert path.stat().st_mode & stat.S_IXUSR, path
    assert stat.S_IMODE((out / "authority").stat().st_mode) == 0o700


def test_site_keys_load_with_flowers_loaders(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    seen = set()
    for site in SITES:
        kit = out / "sites" / site
        args = argparse.Namespace(
            auth_supernode_private_key=str(kit / "node.key"), auth_supernode_public_key=None
        )
        loaded = _try_setup_client_authentication(args)
        assert loaded is not None
        private, public = loaded
        # The key the coordinator registers is this site's key, via `flwr supernode register`.
        registered = try_load_public_key(out / "coordinator" / "site-keys" / f"{site}.pub")
        assert registered == try_load_public_key(kit / "node.pub")
        raw = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        assert (kit / "node.pub").read_bytes().startswith(raw)
        assert private.curve.name == "secp384r1"
        seen.add(registered)
    assert len(seen) == len(SITES)  # every site has its own key


def _script_argv(path: Path) -> list[str]:
    text = path.read_text().replace('"$HERE', f'"{path.parent}')
    body = text.split("exec ", 1)[1]
    argv = shlex.split(body.replace("\\\n", " "))
    assert argv[-1] == "$@"
    return argv[:-1]


def _run_with_stub(script: Path, program: str, args: list[str], tmp: Path) -> list[str]:
    """Run ``script`` with ``program`` on PATH replaced by a stub; the argv it was given."""
    stub_dir, argv_file = tmp / "stub-bin", tmp / "argv"
    stub_dir.mkdir()
    stub = stub_dir / program
    stub.write_text(f'#!/bin/sh\nprintf \'%s\\0\' "$0" "$@" > {shlex.quote(str(argv_file))}\n')
    stub.chmod(0o755)
    env = dict(os.environ, PATH=f"{stub_dir}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", str(script), *args], env=env, check=True, cwd=tmp)
    argv = argv_file.read_text().split("\0")[:-1]
    return [Path(argv[0]).name, *argv[1:]]


def test_scripts_use_flags_that_flower_accepts(
    spec: FederationSpec, provisioned: tuple[Path, list[Kit]], tmp_path: Path
) -> None:
    out, _ = provisioned
    script = out / "coordinator" / "start-coordinator.sh"
    run = tmp_path / "run folder"  # a space: the script must quote it
    coordinator = _run_with_stub(
        script, "flower-superlink", [str(run), "--isolation", "process"], tmp_path
    )
    assert coordinator[0] == "flower-superlink"
    link = _parse_args_run_superlink().parse_args(coordinator[1:])
    # Durable, where `medsilo coordinator start --out RUN` keeps it; the folder is made.
    assert Path(link.database) == run / FLOWER_DIR / DATABASE
    assert (run / FLOWER_DIR).is_dir()
    assert link.isolation == "process"  # arguments after RUN_FOLDER go to Flower
    assert link.enable_supernode_auth and not link.insecure
    assert Path(link.ssl_certfile) == out / "coordinator" / "server.crt"
    assert Path(link.ssl_keyfile) == out / "coordinator" / "server.key"
    assert Path(link.ssl_ca_certfile) == out / "coordinator" / "ca.crt"
    assert (link.host, link.port) == ("0.0.0.0", 8443)
    assert link.fleet_api_type == "grpc-rere"  # what --enable-supernode-auth requires

    for site in SITES:
        kit = out / "sites" / site
        argv = _script_argv(kit / "start-site.sh")
        assert argv[0] == "flower-supernode"
        node = _parse_args_run_supernode().parse_args(argv[1:])
        assert node.superlink == "coord.example.org:8443"
        assert node.superlink == (kit / "coordinator.txt").read_text().strip()
        assert Path(node.root_certificates) == kit / "ca.crt"
        assert Path(node.auth_supernode_private_key) == kit / "node.key"
        assert node.node_config == f'site="{site}"'
        assert not node.insecure and node.host == "127.0.0.1"  # outbound only


def test_the_coordinator_script_parses_and_asks_for_its_run_folder(
    provisioned: tuple[Path, list[Kit]], tmp_path: Path
) -> None:
    out, _ = provisioned
    for script in out.rglob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    missing = subprocess.run(
        ["bash", str(out / "coordinator" / "start-coordinator.sh")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert missing.returncode != 0
    assert "usage: start-coordinator.sh RUN_FOLDER" in missing.stderr
    assert not list(tmp_path.iterdir())  # nothing made, nothing started


def test_register_script_registers_every_site(provisioned: tuple[Path, list[Kit]]) -> None:
    out, _ = provisioned
    text = (out / "coordinator" / "register-sites.sh").read_text()
    for site in SITES:
        assert f'flwr supernode register "$HERE/site-keys/{site}.pub" "$CONNECTION"' in text
        assert f"--name {site}" in text


def test_existing_kits_are_refused_without_force(spec: FederationSpec, tmp_path: Path) -> None:
    provision(spec, tmp_path)
    before = (tmp_path / "sites" / "site_a" / "node.key").read_bytes()
    with pytest.raises(KitExistsError, match="--force"):
        provision(spec, tmp_path)
    assert (tmp_path / "sites" / "site_a" / "node.key").read_bytes() == before
    # One leftover kit folder is enough to refuse.
    other = tmp_path / "other"
    (other / "sites" / "site-b").mkdir(parents=True)
    with pytest.raises(KitExistsError, match="site-b"):
        provision(spec, other)
    provision(spec, tmp_path, force=True)
    assert (tmp_path / "sites" / "site_a" / "node.key").read_bytes() != before
