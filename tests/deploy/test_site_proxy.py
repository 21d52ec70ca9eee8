"""``medsilo site start --proxy URL``: the URL is checked before anything starts, the site's
processes get exactly that proxy for HTTPS, and Flower's own Fleet client, in that
environment, reaches a coordinator through a real forward proxy (tinyproxy) with the TLS
name and certificate checks of the kit intact (fast; the federation through the proxy is
test_site_proxy_loopback.py)."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from flwr.proto.run_pb2 import GetRunRequest
from flwr.supernode.fleet_http_client import FleetHttpClient
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import ConfigError
from medsilo.deploy.kits import Kit, provision
from medsilo.deploy.processes import free_port
from medsilo.deploy.site_node import site_launch
from medsilo.deploy.site_proxy import PROXY_VARIABLES, parse_proxy
from medsilo.deploy.spec import parse_federation
from tests.deploy.forward_proxy import Tinyproxy


def _text(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("proxy.hospital.org:3128", "only an http://"),
        ("https://proxy.hospital.org:3128", "only an http://"),
        ("socks5://proxy.hospital.org:1080", "only an http://"),
        ("http://", "only an http://"),
        ("http://proxy.hospital.org", "name the proxy's port"),
        ("http://proxy.hospital.org:0", "name the proxy's port"),
        ("http://proxy.hospital.org:99999", "from 1 to 65535"),
        ("http://proxy.hospital.org:port", "from 1 to 65535"),
        ("http://proxy.hospital.org:3128/path", "no path"),
        ("http://proxy.hospital.org:3128?x=1", "no path"),
        ("http://:3128", "no host"),
        (" http://proxy.hospital.org:3128", "spaces"),
        ("", "empty"),
    ],
)
def test_a_bad_proxy_url_is_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match="--proxy") as refused:
        parse_proxy(url)
    assert why in str(refused.value)


def test_a_good_proxy_url_keeps_credentials_for_the_site_and_hides_them_when_shown() -> None:
    proxy = parse_proxy("http://alice:s3cret@[2001:db8::1]:3128/")
    assert (proxy.host, proxy.port) == ("2001:db8::1", 3128)
    assert proxy.url == "http://alice:s3cret@[2001:db8::1]:3128"
    assert proxy.shown == "http://[2001:db8::1]:3128"


def test_the_site_gets_exactly_the_proxy_for_https_and_no_other_proxy_setting(
    provisioned: tuple[Path, list[Kit]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://elsewhere:1")
    out, _ = provisioned
    launch = site_launch(out / "sites" / "site_a", None, proxy="http://u:p@10.0.0.8:3128")
    proxies = {k: v for k, v in launch.env.items() if k.lower() in PROXY_VARIABLES}
    url = "http://u:p@10.0.0.8:3128"
    assert proxies == {"https_proxy": url, "HTTPS_PROXY": url}
    assert launch.proxy == "http://10.0.0.8:3128"
    assert "FLWR_HOME" in launch.env  # the rest of the site's environment is untouched
    # Without --proxy the environment's own proxy settings are Flower's to honour.
    plain = site_launch(out / "sites" / "site_a", None)
    assert plain.env["NO_PROXY"] == "http://elsewhere:1" and plain.proxy is None


def test_site_start_refuses_a_bad_proxy_before_anything_is_written(tmp_path: Path) -> None:
    spec = parse_federation(
        {"federation": "px", "coordinator": {"address": "127.0.0.1"}, "sites": [{"name": "a"}]}
    )
    provision(spec, tmp_path / "kits")
    kit = tmp_path / "kits" / "sites" / "a"
    bad = CliRunner().invoke(app, ["site", "start", str(kit), "--proxy", "proxy:3128"])
    assert bad.exit_code == 2 and "only an http:// forward proxy" in _text(bad.output)
    both = ["site", "start", str(kit), "--proxy", "http://127.0.0.1:3128", "--insecure"]
    insecure = CliRunner().invoke(app, both)
    assert insecure.exit_code == 2 and "--proxy with --insecure" in _text(insecure.output)
    assert not (kit / "flower-home").exists()  # refused before the SuperNode's folder is made


class _Coordinator(BaseHTTPRequestHandler):
    """Answers every Fleet call with an empty protobuf (a valid empty response)."""

    paths: ClassVar[list[str]]  # set per server (fixture)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class _TlsCoordinator:
    kit: Path  # the site kit
    port: int
    names: list[str] = field(default_factory=list)  # server names (SNI) asked for
    paths: list[str] = field(default_factory=list)  # Fleet calls served


@pytest.fixture
def tls_coordinator(tmp_path: Path) -> Iterator[_TlsCoordinator]:
    """A TLS server holding a kit's coordinator certificate, issued for ``localhost`` only."""
    port = free_port()
    spec = parse_federation(
        {
            "federation": "proxied",
            "coordinator": {"address": "localhost", "port": port},
            "sites": [{"name": "a"}],
        }
    )
    provision(spec, tmp_path / "kits")
    coordinator = tmp_path / "kits" / "coordinator"
    seen = _TlsCoordinator(tmp_path / "kits" / "sites" / "a", port)

    def note_server_name(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.names.append(str(name))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(coordinator / "server.crt", coordinator / "server.key")
    context.sni_callback = note_server_name
    handler = type("Handler", (_Coordinator,), {"paths": seen.paths})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_flowers_fleet_client_tunnels_through_the_proxy_with_the_kits_tls_names(
    tls_coordinator: _TlsCoordinator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tls_coordinator
    ca = (seen.kit / "ca.crt").read_bytes()
    proxy = Tinyproxy(tmp_path / "proxy", connect_ports=(seen.port,))
    launch = site_launch(seen.kit, None, proxy=proxy.url)
    for name in os.environ.keys() | launch.env.keys():  # the SuperNode's proxy settings only
        if name.lower() in PROXY_VARIABLES:
            if name in launch.env:
                monkeypatch.setenv(name, launch.env[name])
            else:
                monkeypatch.delenv(name)
    with proxy:
        # The name the kit dials (coordinator.txt) is the certificate's: TLS completes end to
        # end through the tunnel, with the coordinator's name as SNI.
        assert launch.coordinator == f"localhost:{seen.port}"
        with FleetHttpClient.from_server_address(launch.coordinator, False, ca, ()) as client:
            client.GetRun(GetRunRequest(run_id=1))
        assert seen.names == ["localhost"] and seen.paths == ["/v1/fleet/get-run"]
        assert f"CONNECT {launch.coordinator} HTTP/1.1" in proxy.log()

        # The same server under a name its certificate does not carry: the site refuses it,
        # although the proxy opened the tunnel.
        other = f"127.0.0.1:{seen.port}"
        with (
            FleetHttpClient.from_server_address(other, False, ca, ()) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.GetRun(GetRunRequest(run_id=1))
        assert f"CONNECT {other} HTTP/1.1" in proxy.log()
        assert seen.paths == ["/v1/fleet/get-run"]  # nothing reached the server the second time
