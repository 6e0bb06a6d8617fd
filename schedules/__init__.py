"""The scheduler process: the periodic jobs (outbox relay, deadline sweep, webhook relay, feedback expiry)."""
