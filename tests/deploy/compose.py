"""``docker-compose`` (v1, Debian's ``docker-compose``) driving one compose file on the test's
own Docker daemon (:mod:`tests.deploy.dockerd`), as one project, for a ``with`` block.

The daemon is named by ``DOCKER_HOST`` (the test's ``unix://`` socket), the compose file's
variables come from ``variables`` only (plus ``PATH``), so neither the machine's default
daemon nor the caller's environment (a stray ``KITS`` or ``HTTPS_PROXY``) can leak in. On
exit ``docker-compose down`` stops and removes the project's containers (and any network it
made); the daemon's own clean-up removes whatever that leaves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from medsilo.deploy.containers import Docker


class ComposeError(RuntimeError):
    """A ``docker-compose`` command failed; the message holds its output."""


class Compose:
    """``with Compose(docker, file, project, variables) as compose:``; ``down`` on exit."""

    def __init__(
        self, docker: Docker, file: Path, project: str, variables: Mapping[str, str]
    ) -> None:
        if docker.host is None:
            raise ValueError("name the daemon: the test's own, never the machine's default")
        self.docker = docker
        self.file = file
        self.project = project
        self.env = {"PATH": os.environ["PATH"], "DOCKER_HOST": docker.host, **variables}

    def command(self, *args: str) -> list[str]:
        compose = shutil.which("docker-compose")
        if compose is None:
            raise ComposeError("docker-compose not found: apt-get install docker-compose")
        return [compose, "--file", str(self.file), "--project-name", self.project, *args]

    def run(self, *args: str, timeout_s: float = 300) -> str:
        result = subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout_s
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-6000:]
            raise ComposeError(f"docker-compose {' '.join(args)} failed:\n{output}")
        return result.stdout

    def container(self, service: str) -> str:
        """The id of ``service``'s container (the project has one per service)."""
        ids = self.run("ps", "--quiet", service).split()
        if len(ids) != 1:
            raise ComposeError(f"{service}: expected one container, found {ids}")
        return ids[0]

    def logs(self, tail: str = "60") -> str:
        result = subprocess.run(
            self.command("logs", "--no-color", "--tail", tail),
            env=self.env,
            capture_output=True,
            text=True,
        )
        return result.stdout + result.stderr

    def __enter__(self) -> Compose:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.run("down", "--timeout", "10")
        except ComposeError:
            if kind is None:  # a failure of the test itself is the one worth reporting
                raise
