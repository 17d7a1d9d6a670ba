"""Which proxy reaches a URL (`Settings.proxy_for`), as the usual variables mean it."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.kernel.settings import Settings


def settings(**proxies: str) -> Settings:
    return Settings(Path("/h"), "sqlite://", None, proxies=tuple(proxies.items()))


def test_no_proxy_set_is_direct() -> None:
    assert settings().proxy_for("https://api.stripe.com") is None


def test_the_schemes_proxy_else_all() -> None:
    both = settings(https="http://tls:1", http="http://plain:2", all="http://any:3")
    assert both.proxy_for("https://api.stripe.com") == "http://tls:1"
    assert both.proxy_for("http://stripe.test:8080/v1") == "http://plain:2"
    assert settings(all="http://any:3").proxy_for("https://api.stripe.com") == "http://any:3"
    assert settings(http="http://plain:2").proxy_for("https://api.stripe.com") is None


@pytest.mark.parametrize(
    ("no", "url", "direct"),
    [
        ("*", "https://api.stripe.com", True),
        ("stripe.com", "https://api.stripe.com", True),
        (".stripe.com", "https://api.stripe.com", True),
        ("STRIPE.COM", "https://api.stripe.com", True),
        ("stripe.com", "https://api.stripe.com.evil.test", False),
        ("pe.com", "https://api.stripe.com", False),
        ("localhost, 127.0.0.1", "http://127.0.0.1:12111", True),
        ("127.0.0.1:12111", "http://127.0.0.1:12111", True),
        ("127.0.0.1:80", "http://127.0.0.1:12111", False),
        ("api.stripe.com:443", "https://api.stripe.com", True),
        ("", "https://api.stripe.com", False),
    ],
)
def test_no_proxy_names_hosts_domains_and_ports(no: str, url: str, direct: bool) -> None:
    chosen = settings(all="http://proxy:3128", no=no).proxy_for(url)
    assert chosen == (None if direct else "http://proxy:3128")
