"""Webhook endpoints and signed delivery with retries (``Stripe-Signature: t=..,v1=..``)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from headwater.sandbox.errors import invalid, no_such
from headwater.sandbox.events import Event
from headwater.sandbox.faults import Stats
from headwater.sandbox.ids import IdFactory


def _check_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise invalid(f"Invalid URL: {url}", param="url", code="url_invalid")


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for `payload`."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Endpoint:
    id: str
    url: str
    secret: str
    enabled_events: list[str]
    created: int
    deliveries: int = field(default=0)
    api_version: str | None = None
    disabled: bool = False

    def wants(self, event_type: str) -> bool:
        if self.disabled:  # Stripe sends a disabled endpoint nothing, not even later
            return False
        for pattern in self.enabled_events:
            if pattern == "*" or pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False

    def public(self, with_secret: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": None,
            "enabled_events": self.enabled_events,
            "livemode": False,
            "metadata": {},
            "status": "disabled" if self.disabled else "enabled",
            "url": self.url,
        }
        if with_secret:
            data["secret"] = self.secret
        return data


class WebhookHub:
    """Registered endpoints; each event is POSTed to every endpoint that wants it."""

    def __init__(self, stats: Stats, seed: int, retry_seconds: float, max_attempts: int) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.stats = stats
        self.ids = IdFactory(seed, "webhooks")
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def register(
        self,
        url: str,
        enabled_events: list[str],
        created: int,
        secret: str | None = None,
        api_version: str | None = None,
    ) -> Endpoint:
        _check_url(url)
        if not enabled_events:
            raise invalid("Missing required param: enabled_events.", param="enabled_events")
        endpoint = Endpoint(
            id=self.ids.make("we_", 24),
            url=url,
            secret=secret or self.ids.make("whsec_", 32),
            enabled_events=list(enabled_events),
            created=created,
            api_version=api_version,
        )
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def get(self, endpoint_id: str) -> Endpoint:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise no_such("webhook_endpoint", endpoint_id)
        return endpoint

    def update(
        self,
        endpoint_id: str,
        url: str | None,
        enabled_events: list[str] | None,
        disabled: bool | None,
    ) -> Endpoint:
        """Stripe's ``POST /v1/webhook_endpoints/{id}``: a disabled endpoint gets no
        deliveries (events made meanwhile are never sent to it)."""
        endpoint = self.get(endpoint_id)
        if url is not None:
            _check_url(url)
            endpoint.url = url
        if enabled_events is not None:
            if not enabled_events:
                raise invalid("Invalid array", param="enabled_events")
            endpoint.enabled_events = list(enabled_events)
        if disabled is not None:
            endpoint.disabled = disabled
        return endpoint

    def remove(self, endpoint_id: str) -> None:
        if self.endpoints.pop(endpoint_id, None) is None:
            raise no_such("webhook_endpoint", endpoint_id)

    def count(self) -> int:
        return len(self.endpoints)

    def on_event(self, event: Event) -> None:
        for endpoint in list(self.endpoints.values()):
            if endpoint.wants(event.type):
                task = asyncio.get_running_loop().create_task(self._deliver(endpoint, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, endpoint: Endpoint, event: Event) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0)
        for attempt in range(1, self.max_attempts + 1):
            if self.endpoints.get(endpoint.id) is not endpoint or endpoint.disabled:
                return  # deleted or disabled meanwhile: Stripe retries nothing to it
            # Signed with real time: receivers check the timestamp against their own clock.
            header = sign(event.blob, endpoint.secret, int(time.time()))
            self.stats.webhook_attempts += 1
            try:
                response = await self._client.post(
                    endpoint.url,
                    content=event.blob,
                    headers={
                        "content-type": "application/json; charset=utf-8",
                        "stripe-signature": header,
                        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    },
                )
                if 200 <= response.status_code < 300:
                    self.stats.webhook_deliveries += 1
                    endpoint.deliveries += 1
                    return
            except httpx.HTTPError:
                pass
            self.stats.webhook_failures += 1
            if attempt < self.max_attempts:
                await asyncio.sleep(self.retry_seconds * 2 ** (attempt - 1))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
