"""The image build's host-side pieces, without Docker: the wheel server, the cache keys, the
code context's measurement and the refusal of a missing requirements file."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from medsilo.attestation.measurement import measure_files, package_measurement
from medsilo.deploy import containers
from medsilo.deploy.containers import ContainerBuildError, Docker, build_images


def test_the_wheelhouse_is_served_while_the_block_runs_and_not_after(tmp_path: Path) -> None:
    (tmp_path / "demo-1.0-py3-none-any.whl").write_bytes(b"not really a wheel")
    with containers.served(tmp_path) as url:
        listing = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'href="demo-1.0-py3-none-any.whl"' in listing  # what pip --find-links reads
        wheel = urllib.request.urlopen(url + "demo-1.0-py3-none-any.whl", timeout=10).read()
        assert wheel == b"not really a wheel"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)


def test_the_wheelhouse_key_follows_the_requirements(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("torch==2.13.0\n")
    second.write_text("torch==2.13.0\n")
    assert containers.requirements_key(first) == containers.requirements_key(second)
    second.write_text("torch==2.14.1\n")
    assert containers.requirements_key(first) != containers.requirements_key(second)


def test_the_images_code_measures_as_the_provisioning_hosts(tmp_path: Path) -> None:
    """The default enrolment policy admits exactly the provisioning host's measurement; the
    package copied into the runtime image must hash the same."""
    containers.code_context(tmp_path, containers.checkout_root() / "deploy" / "docker")
    assert measure_files(tmp_path / "medsilo") == package_measurement()
    assert not list((tmp_path / "medsilo").rglob("__pycache__"))
    assert (tmp_path / "site-entrypoint.sh").is_file() and (tmp_path / "medsilo-cli").is_file()


def test_a_missing_requirements_file_is_named_before_docker_is_asked(tmp_path: Path) -> None:
    missing = tmp_path / "requirements.txt"
    with pytest.raises(ContainerBuildError, match=str(missing)):
        build_images(Docker("unix:///nonexistent.sock"), cache=tmp_path, requirements=missing)
