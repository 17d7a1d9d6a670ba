"""The wire under `StripeHTTP`: GET requests over a pool of keep-alive connections.

urllib3's connection pool, not httpx's client: a page of 100 customers cost httpx
about 0.4 ms more of the reading process's CPU than urllib3 (a quarter of what the
reading process then spent on a page at zero latency; docs/performance.md), and the
reading process sends nothing but GETs to one host.  Thread-safe: the reading
process's workers share one `PooledWire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlencode, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import make_headers

#: Query parameters: a list value repeats its key (``expand[]=a&expand[]=b``).
Params = Mapping[str, str | int | list[str]]


class WireError(Exception):
    """The request got no answer: no connection, a timeout, a connection cut."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whatever its status; `headers` compare names case-insensitively."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Wire(Protocol):
    def get(self, path: str, params: Params) -> Answer:
        """GET `path` (below the base URL) with `params`; `WireError` if unanswered."""
        ...

    def close(self) -> None: ...


class PooledWire:
    """GETs to one base URL over up to `connections` kept-alive connections (more are
    opened, and closed after use, if more requests than that are under way), directly
    or through an HTTP(S) `proxy` (``http://user:password@host:port``: the credentials
    go in ``Proxy-Authorization``; an ``https://`` Stripe is reached through a tunnel)."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        connections: int,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        options: dict[str, Any] = {
            "maxsize": connections,
            "block": False,
            "headers": dict(headers),
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,
        }
        if parts.scheme == "https":
            options["ca_certs"] = certifi.where()  # as httpx did: not the system's store
        self._pool: urllib3.HTTPConnectionPool | urllib3.ProxyManager
        if proxy is None:
            self._prefix = parts.path.rstrip("/")  # requests name the path alone
            self._pool = urllib3.connection_from_url(origin, **options)
        else:
            self._prefix = origin + parts.path.rstrip("/")  # a proxy is told the host
            auth = urllib3.util.parse_url(proxy).auth
            self._pool = urllib3.ProxyManager(
                proxy,
                num_pools=1,
                proxy_headers=make_headers(proxy_basic_auth=unquote(auth)) if auth else None,
                **options,
            )

    def get(self, path: str, params: Params) -> Answer:
        url = f"{self._prefix}{path}"
        if params:
            url += "?" + urlencode(params, doseq=True)
        try:
            response = self._pool.urlopen(
                "GET", url, retries=False, redirect=False, preload_content=True
            )
        except (Urllib3Error, OSError) as exc:
            raise WireError(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status, response.headers, response.data)

    def close(self) -> None:
        if isinstance(self._pool, urllib3.ProxyManager):
            self._pool.clear()
        else:
            self._pool.close()
