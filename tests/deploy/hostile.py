"""Hostile traffic for the coordinator's SuperLink port, for the loopback hostile-input test.

* :class:`RecordingRelay`: a TCP relay on 127.0.0.1 that a site is pointed at instead of the
  coordinator; it forwards both ways and keeps every byte the site sent, as an attacker on
  the network path would capture them (TLS records: ciphertext);
* :func:`send_garbage`: random bytes on a fresh TCP connection;
* :func:`send_truncated_request`: a TLS connection (verified with the federation's CA, as a
  site's) carrying the first half of a Fleet API request whose ``Content-Length`` promises
  more, then closed;
* :func:`replay`: a captured client byte stream re-sent on a fresh connection.

Each returns what the server sent back before closing, to show it answered nothing useful.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

from medsilo.deploy import processes as proc


def _pipe(src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
    with contextlib.suppress(OSError):
        while chunk := src.recv(65536):
            if record is not None:
                record += chunk
            dst.sendall(chunk)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class RecordingRelay:
    """``with RecordingRelay(port) as relay:`` forwards 127.0.0.1:``relay.port`` to ``port``
    and keeps each connection's client-to-server bytes in ``relay.captured``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = proc.free_port()
        self.captured: list[bytearray] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
                record = bytearray()
                self.captured.append(record)
                self._open += [client, upstream]
                for a, b, rec in ((client, upstream, record), (upstream, client, None)):
                    threading.Thread(target=_pipe, args=(a, b, rec), daemon=True).start()

    def __enter__(self) -> RecordingRelay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()


def _drain(sock: socket.socket, timeout_s: float) -> bytes:
    """What the server sends until it closes (or ``timeout_s`` of silence)."""
    sock.settimeout(timeout_s)
    got = bytearray()
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            got += chunk
    return bytes(got)


def send_garbage(port: int, size: int = 4096, timeout_s: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(os.urandom(size))
        return _drain(sock, timeout_s)


def send_truncated_request(port: int, ca: Path, timeout_s: float = 10.0) -> bytes:
    """Half a ``PullMessages`` POST over TLS, then the write side is closed."""
    context = ssl.create_default_context(cafile=str(ca))
    body = os.urandom(256)
    head = (
        f"POST /v1/fleet/pull-messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/protobuf\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(head + body[: len(body) // 2])
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)
        return _drain(tls, timeout_s)


def replay(port: int, captured: bytes, timeout_s: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(captured)
        return _drain(sock, timeout_s)
