"""Intake (登记): registering upstream events exactly once, ledger numbers, the outbox relay.

Owns what happens between an upstream system's request and a routing message: the source's
rate limit, validation of the envelope, the event row with its ledger number and encrypted
identity (one transaction), the idempotency key ``(source, external_id)``, the state an event's
source may read back, and the relay that re-enqueues whatever was committed but not routed.
"""
