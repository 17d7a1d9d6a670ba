"""The "Add source..." form puts Stripe's refusal at the field at fault: a Stripe API
URL where nothing answers was shown under "API key" (every error that was not bad
input went there), so the user looked at a good key; it is now under "Stripe API URL",
the "Advanced" section open.  A rejected key stays under "API key"."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, home_with_user
from tests.serving import start_serve

from headwater.sandbox.testing import start_sandbox

pytestmark = pytest.mark.slow


def _field_error(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', page)
    return found.group(1) if found else None


def test_an_unreachable_url_is_shown_at_the_url_and_a_bad_key_at_the_key(tmp_path: Path) -> None:
    home = home_with_user(tmp_path / "home")
    with (
        start_sandbox(customers=1) as sandbox,
        start_serve(home, workers=0) as served,
        httpx.Client(base_url=served.url, timeout=60, headers={"Origin": served.url}) as c,
    ):
        assert c.post("/sign-in", data={"email": EMAIL, "password": PASSWORD}).is_redirect

        def add(key: str, url: str, form_id: str, rate: str = "") -> str:
            form = {"form_id": form_id, "name": "S", "api_key": key, "base_url": url}
            form["requests_per_second"] = rate
            answer = c.post("/sources/new/stripe", data=form)
            assert answer.status_code == 400, answer.text
            return answer.text

        page = add("sk_test_sandbox", "http://127.0.0.1:9", "f1")
        shown = _field_error(page, "base_url")
        assert shown is not None, page
        assert "Could not reach Stripe at http://127.0.0.1:9" in shown
        assert _field_error(page, "api_key") is None
        assert "<details open>" in page
        # The field in error says so to assistive technology, and points at its message.
        url_input = re.search(r'<input id="base_url"[^>]*>', page)
        assert url_input is not None
        assert 'aria-invalid="true"' in url_input.group(0)
        assert 'aria-describedby="base_url-error"' in url_input.group(0)

        page = add("sk_test_WrongKey1234", sandbox.url, "f2")
        shown = _field_error(page, "api_key")
        assert shown is not None, page
        assert "invalid or revoked" in shown
        assert _field_error(page, "base_url") is None

        page = add("sk_test_sandbox", sandbox.url, "f3", rate="-5")
        assert _field_error(page, "requests_per_second") is not None, page
        rate_input = re.search(r'<input id="requests_per_second"[^>]*>', page)
        assert rate_input is not None
        assert 'aria-invalid="true"' in rate_input.group(0)
        assert "requests_per_second-error" in rate_input.group(0)
