"""Routing (归口分办): which unit handles and which verifies an event, and the task it becomes.

Owns the routing rules of DESIGN §5 as pure functions over the org (jurisdiction, cross-handling,
escalated handling, recusal), the reason of each decision in words a zone leader can read, and
the one transaction that turns a stored event into its dispatched task or triage item.
"""
