"""The Stripe sandbox: a Stripe-compatible API server for demos, tests and benchmarks.

Run it with ``headwater sandbox`` (or ``python -m headwater.sandbox``); start one from a
test with `headwater.sandbox.testing.start_sandbox`.  It speaks Stripe's paths,
parameters, object shapes and error format (API version 2024-06-20):

- ``GET/POST /v1/customers``, ``GET/POST/DELETE /v1/customers/{id}``
- ``GET /v1/events``, ``GET /v1/events/{id}`` (30 days of ``customer.*`` events)
- ``GET/POST /v1/webhook_endpoints``, ``GET/POST/DELETE /v1/webhook_endpoints/{id}``
  (``disabled=true`` stops deliveries; ``api_version`` is kept and must be the
  sandbox's); the sandbox also accepts a ``secret`` parameter on create to choose the
  signing secret.
- ``Idempotency-Key`` on a ``POST`` replays the first answer, refuses other parameters
  or another endpoint (``idempotency_error``) and lasts 24 hours of the sandbox clock
  (`headwater.sandbox.idempotency`).

Keys: ``sk_test_sandbox`` (everything), ``rk_test_customers_only`` (Customers: Read),
plus ``--key KEY=PERMISSIONS``; permissions are ``customers:read``,
``customers:write``, ``events:read``, ``webhooks:read``, ``webhooks:write`` or ``*``.
``sk_live_``/``rk_live_`` keys are rate-limited as live mode.  Limits work like
Stripe's (`headwater.sandbox.limits`): a global rate per mode, a rate per named
operation under it, and a cap on requests in flight per key; a 429 says which one
refused in its ``Stripe-Rate-Limited-Reason`` header.  Latency can be a constant, a
lognormal distribution and a cost per object returned (`headwater.sandbox.latency`).

Sandbox-only control endpoints (any valid key; never rate-limited or faulted, not
counted in the statistics).  Bodies are JSON objects (or form-encoded):

- ``GET /_sandbox/control`` -> the knobs; ``POST /_sandbox/control`` with any of
  ``latency_ms``, ``jitter_ms``, ``latency_median_ms``, ``latency_p99_ms``,
  ``latency_per_object_ms``, ``error_rate``, ``rate_limit_error_rate``,
  ``malformed_rate``, ``rate_limit``, ``live_rate_limit``, ``endpoint_rate_limit``,
  ``concurrency_limit`` (limits: 0 = unlimited) changes them; the rate buckets restart
  full.
- ``GET /_sandbox/clock`` -> ``{"now", "offset"}``; ``POST /_sandbox/clock`` with
  ``{"advance_seconds": N}`` moves the clock forward (new objects and event aging); N
  is a finite number of seconds, and the clock stops at `pages.LATEST_CREATED` (2038).
- ``GET /_sandbox/stats`` -> request counters (``requests``, ``by_path``, ``by_status``,
  ``rate_limited``, ``rate_limited_by_reason``, ``peak_in_flight``, ``server_errors``,
  ``malformed``, ``webhook_attempts``, ``webhook_deliveries``, ``webhook_failures``,
  ``customers``, ``events``); ``GET /_sandbox/stats/timeline`` -> ``{"timeline":
  [[admitted, answered, status, operation], ...]}``, the newest 50,000 answered API
  requests (wall-clock seconds); ``POST /_sandbox/stats/reset`` zeroes both.
- ``POST /_sandbox/snapshot`` writes the ``--state`` file now (it is also written on exit).

Generated customers (``--customers N --seed S``) are pre-existing: they emit no events.
Webhook signatures use real time (receivers check it against their own clock), not the
sandbox clock.
"""
