"""Stripe webhooks (DESIGN.md §11): near-real-time imports.

- `signature`: verifying ``Stripe-Signature`` (constant-time, any ``v1``, tolerance
  both ways, the clock passed in).
- `receive`: one delivery: verified, deduplicated by event id, then runs are asked
  for; the payload itself is never imported (the Events API is the source of truth).
- `followups`: coalescing those asks into at most one queued run per pipeline, and the
  `Dispatcher` thread that enqueues them.
- `endpoints`: a connection's webhook settings (register with Stripe, a hand-made
  endpoint's secret, remove, show).
- `limits`: the per-connection delivery rate limit and body size limit.
- `lookup`: a connection's endpoint as verifying needs it, kept about a second in the
  serving process (forgotten at once when this process changes it).
- `refusals`: refused deliveries counted in memory and written at most once a second,
  for the connection's status.
"""
