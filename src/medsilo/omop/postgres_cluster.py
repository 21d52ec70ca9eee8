"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary folder.

The tests (tests/omop/conftest.py) and ``medsilo bench omop`` run against one, so neither
needs a database server set up beforehand, only PostgreSQL's server binaries.

Debian keeps the server binaries in ``/usr/lib/postgresql/<major>/bin`` (off PATH); other
systems put them on PATH. initdb refuses to run as root, so under root (a CI container) the
cluster is owned and run by the ``postgres`` account Debian's package creates (else
``nobody``) through ``runuser``. The server listens on a Unix socket in the temporary folder
only (no TCP), with ``trust`` authentication: roles are real, passwords are not tested.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, newest Debian version first, else PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major, reverse=True)
    if debian:
        return Path(debian[0]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


@dataclass
class Cluster:
    folder: Path
    bin: Path
    user: str | None  # the account running the server when the tests run as root
    port: int = 5432

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        data = self.folder / "data"
        self.socket_dir.mkdir(parents=True)
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chmod(self.folder, 0o755)
            for path in (self.folder, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {self.port} -c fsync=off"
        log = self.folder / "server.log"
        self._run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")


def server_account() -> str | None:
    """None when not root; else the unprivileged account that may own a cluster."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a postgres nor a nobody account exists")
