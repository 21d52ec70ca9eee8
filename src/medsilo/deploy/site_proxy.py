"""``medsilo site start --proxy URL``: a site reaching its coordinator through the hospital's
forward proxy, on the coordinator's one port.

Flower 1.42's SuperNode speaks to the SuperLink's Fleet API as protobuf over HTTPS, through
httpx (``flwr.supercore.protobuf.client``), which reads the standard proxy variables. For an
``https://`` coordinator it asks the proxy named by ``https_proxy``/``HTTPS_PROXY`` for a
``CONNECT host:port`` tunnel and runs TLS end to end inside it: the server name (SNI) and the
certificate check are the coordinator's, against the kit's ``ca.crt``, so the proxy sees the
coordinator's name and port and ciphertext only. The site itself listens on nothing reachable
from outside.

The SuperNode's own Runtime API, which the SuperExec and the ClientApp processes call, is
plain HTTP on 127.0.0.1, so it must never be sent to a proxy. ``--proxy`` therefore sets
``https_proxy``/``HTTPS_PROXY`` for the site's processes and removes every other proxy
variable the environment carried (``http_proxy``, ``all_proxy``, ``no_proxy``, either case):
then exactly the coordinator's connection goes through the proxy, whatever the machine's
defaults are.

Only ``http://HOST:PORT`` proxies are accepted: the tunnel is already TLS to the coordinator,
and Flower verifies every certificate it meets against the federation's CA only, so a TLS
connection to the proxy itself (``https://``) could never verify; SOCKS is not HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from medsilo.config import ConfigError

#: The variables httpx's proxy lookup reads (``urllib.request.getproxies`` matches the name in
#: either case and prefers the lower-case one).
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
EXAMPLE = "http://proxy.hospital.org:3128"


@dataclass(frozen=True)
class ForwardProxy:
    """A checked ``http://[user:password@]host:port`` forward proxy URL."""

    url: str
    host: str
    port: int

    @property
    def shown(self) -> str:
        """The proxy as the site prints it: no credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"http://{host}:{self.port}"

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with this proxy for HTTPS and no other proxy setting left."""
        kept = {k: v for k, v in env.items() if k.lower() not in PROXY_VARIABLES}
        return kept | {"https_proxy": self.url, "HTTPS_PROXY": self.url}


def parse_proxy(text: str) -> ForwardProxy:
    """Check ``--proxy`` before anything starts; a ``ConfigError`` says what is wrong."""

    def refuse(why: str) -> ConfigError:
        return ConfigError(f"--proxy {text!r}: {why} (expected e.g. {EXAMPLE})")

    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise refuse("empty or holds spaces")
    parts = urlsplit(text)
    if parts.scheme.lower() != "http" or not parts.netloc:
        raise refuse(
            "only an http:// forward proxy URL is supported (the site's TLS runs to the "
            "coordinator inside the proxy's CONNECT tunnel; no https:// or SOCKS proxy)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise refuse("a proxy URL has no path, query or fragment")
    if not parts.hostname:
        raise refuse("no host")
    try:
        port = parts.port
    except ValueError:
        raise refuse("the port must be a number from 1 to 65535") from None
    if port is None or port == 0:
        raise refuse("name the proxy's port")
    return ForwardProxy(url=f"http://{parts.netloc}", host=parts.hostname, port=port)
