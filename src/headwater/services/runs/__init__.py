"""Runs as a service: the scheduler that enqueues runs on their schedules."""
