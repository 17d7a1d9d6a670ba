"""Headwater: Stripe customers, filtered and mapped, landed in your own warehouse."""
