"""Container images for a deployment, built with no registry: ``python -m
medsilo.deploy.containers build``.

Hospitals' IT runs services as images; nothing here may be pulled (no Docker Hub, no PyPI at
run time), so every layer is made locally:

1. **base**: Debian bookworm ``minbase`` with ``python3`` and ``python3-venv``, made by
   ``mmdebstrap`` into a tar and ``docker import``-ed (no ``FROM`` of a registry image);
2. **deps** (``deploy/docker/Dockerfile.deps``): a venv with exactly ``requirements.txt``,
   installed with ``pip --no-index`` from a wheelhouse that ``pip wheel`` made on the build
   host (the host's pip configuration decides where ``torch==2.13.0``'s CPU build comes from,
   so the image gets the same files as the host's venv), served to the build over HTTP on
   127.0.0.1 (:func:`served`);
3. **runtime** (``Dockerfile.runtime``): the medsilo package folder copied as it is, so a
   container's software-attestation measurement equals the provisioning host's;
4. **coordinator** and **site** (``Dockerfile.coordinator``, ``Dockerfile.site``): the two
   start commands as entry points.

The slow parts are cached under ``~/.cache/medsilo-docker`` (``$MEDSILO_DOCKER_CACHE``), keyed
by what they are made from: the base tar by the package list, the wheelhouse by the
requirements' SHA-256, and the deps image (``docker save``) by both, so a fresh Docker daemon
(the end-to-end test starts one) loads it instead of installing torch again. The builds use
the classic builder with host networking (``DOCKER_BUILDKIT=0 docker build --network host``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

import medsilo

#: Debian release and packages of the base image.
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv")
MIRROR = "http://deb.debian.org/debian"
CACHE_ENV = "MEDSILO_DOCKER_CACHE"


class ContainerBuildError(RuntimeError):
    """A step of the image build failed; the message names the step and its output."""


def checkout_root() -> Path:
    """The source checkout holding ``deploy/docker`` and ``requirements.txt``."""
    return Path(medsilo.__file__).resolve().parents[2]


def default_cache() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medsilo-docker"


def _key(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def base_key() -> str:
    return _key(SUITE.encode(), ",".join(BASE_PACKAGES).encode(), platform.machine().encode())


def requirements_key(requirements: Path) -> str:
    """The wheelhouse's key: the pins, and the Python and machine the wheels are for (the
    image's bookworm Python is 3.11, like the host's)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}"
    return _key(requirements.read_bytes(), tag.encode())


def _run(step: str, command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-6000:]
        raise ContainerBuildError(
            f"{step} failed (exit {result.returncode}): {' '.join(command)}\n{output}"
        )
    return result.stdout


def _require(program: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise ContainerBuildError(f"{program} not found: apt-get install {package}")
    return found


def ensure_base_tar(cache: Path) -> Path:
    """The base root file system as a tar (``mmdebstrap``, ~225 MB), made once per key."""
    target = cache / f"base-{SUITE}-{base_key()}.tar"
    if target.is_file():
        return target
    mmdebstrap = _require("mmdebstrap", "mmdebstrap")
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tar.partial")
    for leftover in (partial, target):  # an interrupted run's, or a folder from an older build
        if leftover.is_dir():
            shutil.rmtree(leftover)
        leftover.unlink(missing_ok=True)
    packages = ",".join(BASE_PACKAGES)
    # --format=tar: mmdebstrap guesses the format from the name, and ".partial" would make a
    # folder, which `docker import` cannot read
    command = [
        mmdebstrap,
        "--variant=minbase",
        "--format=tar",
        f"--include={packages}",
        SUITE,
        str(partial),
    ]
    _run("mmdebstrap", [*command, MIRROR])
    partial.rename(target)
    return target


def ensure_wheelhouse(requirements: Path, cache: Path) -> Path:
    """Every pinned wheel (``pip wheel -r``, sdists built here), made once per key."""
    target = cache / f"wheels-{requirements_key(requirements)}"
    if (target / ".complete").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="wheels-", dir=cache))
    try:
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
        _run("pip wheel", [*pip, "-r", str(requirements), "-w", str(partial)])
        (partial / ".complete").write_text(requirements.read_text())
        if target.exists():  # an incomplete earlier attempt
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return target


@dataclass(frozen=True)
class Docker:
    """The ``docker`` client, talking to ``host`` (``unix:///...``) or the default daemon."""

    host: str | None = None

    def command(self, *args: str) -> list[str]:
        docker = _require("docker", "docker.io")
        return [docker, *(["-H", self.host] if self.host else []), *args]

    def run(self, step: str, *args: str) -> str:
        return _run(step, self.command(*args), env=dict(os.environ, DOCKER_BUILDKIT="0"))

    def has_image(self, tag: str) -> bool:
        probe = self.command("image", "inspect", tag)
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def build(self, tag: str, dockerfile: Path, context: Path, **build_args: str) -> None:
        arguments = [f"--build-arg={k}={v}" for k, v in build_args.items()]
        self.run(
            f"docker build {tag}",
            *("build", "--network", "host", "--tag", tag, "--file", str(dockerfile)),
            *arguments,
            str(context),
        )

    def size_mb(self, tag: str) -> float:
        size = self.run("docker image inspect", "image", "inspect", "-f", "{{.Size}}", tag)
        return int(size.strip()) / 1e6


@dataclass
class Images:
    """The tags built, and how long each step took (seconds)."""

    coordinator: str
    site: str
    runtime: str
    deps: str
    seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 for the ``with`` block: a pip ``--find-links`` URL.

    The build reaches it through host networking; it is read-only and gone afterwards. This
    keeps the wheels out of the build context and out of the image's layers (a ``COPY`` of
    them would stay in the image, and a second build stage copying the venv over costs
    minutes on 2 cores)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """pip asks for ~130 files; their lines would bury the build's own output."""


def _base_image(docker: Docker, cache: Path, seconds: dict[str, float]) -> str:
    """The base image's tag, imported from the (cached) ``mmdebstrap`` tar if missing."""
    base = f"medsilo-base:{base_key()}"
    if not docker.has_image(base):
        start = time.monotonic()
        tar = ensure_base_tar(cache)
        seconds["base tar (mmdebstrap)"] = time.monotonic() - start
        start = time.monotonic()
        docker.run("docker import", "import", str(tar), base)
        seconds["base (docker import)"] = time.monotonic() - start
    return base


def _deps_image(
    docker: Docker, requirements: Path, cache: Path, dockerfiles: Path, tag: str
) -> dict[str, float]:
    """Build (or load from the cache) the deps image; the seconds each step took. A loaded
    image brings its base layers with it, so the base is made only for a build."""
    seconds: dict[str, float] = {}
    saved = cache / f"image-{tag.replace(':', '-')}.tar"
    if docker.has_image(tag):
        return seconds
    start = time.monotonic()
    if saved.exists():
        docker.run("docker load", "load", "--quiet", "--input", str(saved))
        seconds["deps (docker load from cache)"] = time.monotonic() - start
        return seconds
    base = _base_image(docker, cache, seconds)
    start = time.monotonic()
    wheels = ensure_wheelhouse(requirements, cache)
    seconds["wheelhouse (pip wheel)"] = time.monotonic() - start
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="medsilo-deps-") as tmp, served(wheels) as url:
        context = Path(tmp)
        shutil.copy2(requirements, context / "requirements.txt")
        docker.build(tag, dockerfiles / "Dockerfile.deps", context, BASE=base, WHEELS=url)
    seconds["deps (pip install in the image)"] = time.monotonic() - start
    start = time.monotonic()
    partial = saved.with_suffix(".tar.partial")
    docker.run("docker save", "save", "--output", str(partial), tag)
    partial.rename(saved)
    seconds["deps (docker save to cache)"] = time.monotonic() - start
    return seconds


def code_context(context: Path, dockerfiles: Path) -> None:
    """The medsilo package (as measured: no ``__pycache__``) and the images' small files."""
    package = Path(medsilo.__file__).resolve().parent
    shutil.copytree(package, context / "medsilo", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("medsilo-cli", "site-entrypoint.sh"):
        shutil.copy2(dockerfiles / name, context / name)


def build_images(
    docker: Docker,
    *,
    cache: Path | None = None,
    requirements: Path | None = None,
    dockerfiles: Path | None = None,
    tag: str = "latest",
) -> Images:
    """Build ``medsilo-coordinator:TAG`` and ``medsilo-site:TAG`` (and what they stand on)."""
    cache = cache or default_cache()
    root = checkout_root()
    requirements = requirements or root / "requirements.txt"
    dockerfiles = dockerfiles or root / "deploy" / "docker"
    for needed in (requirements, dockerfiles / "Dockerfile.deps"):
        if not needed.is_file():
            raise ContainerBuildError(
                f"{needed} not found: build from a medsilo source checkout "
                "(or pass --requirements / --dockerfiles)"
            )
    deps = f"medsilo-deps:{requirements_key(requirements)}-{base_key()}"
    seconds = _deps_image(docker, requirements, cache, dockerfiles, deps)
    images = Images(
        coordinator=f"medsilo-coordinator:{tag}",
        site=f"medsilo-site:{tag}",
        runtime=f"medsilo-runtime:{tag}",
        deps=deps,
        seconds=seconds,
    )
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="medsilo-code-") as tmp:
        context = Path(tmp)
        code_context(context, dockerfiles)
        docker.build(images.runtime, dockerfiles / "Dockerfile.runtime", context, DEPS=deps)
        for image, name in ((images.coordinator, "coordinator"), (images.site, "site")):
            dockerfile = dockerfiles / f"Dockerfile.{name}"
            docker.build(image, dockerfile, context, RUNTIME=images.runtime)
    seconds["runtime, coordinator, site"] = time.monotonic() - start
    return images


app = typer.Typer(help="Container images for a medsilo deployment (docs/deployment.md).")


@app.callback()
def _group() -> None:
    """Keep ``build`` a subcommand (room for more, e.g. a future ``push``)."""


@app.command()
def build(
    docker_host: Annotated[
        str | None, typer.Option(help="the daemon, e.g. unix:///run/docker.sock (docker's default)")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help=f"cache folder (default ${CACHE_ENV} or ~/.cache/...)")
    ] = None,
    tag: Annotated[str, typer.Option(help="the images' tag")] = "latest",
    requirements: Annotated[Path | None, typer.Option(help="pinned requirements")] = None,
    dockerfiles: Annotated[Path | None, typer.Option(help="folder of the Dockerfiles")] = None,
) -> None:
    """Build medsilo-coordinator:TAG and medsilo-site:TAG on this machine, no registry."""
    docker = Docker(docker_host)
    try:
        images = build_images(
            docker, cache=cache, requirements=requirements, dockerfiles=dockerfiles, tag=tag
        )
    except ContainerBuildError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    for step, took in images.seconds.items():
        typer.echo(f"{step}: {took:.1f} s")
    for image in (images.coordinator, images.site):
        typer.echo(f"{image}: {docker.size_mb(image):.0f} MB")


if __name__ == "__main__":
    app()
