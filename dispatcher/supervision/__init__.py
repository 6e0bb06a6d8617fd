"""Supervision (限期督办): time limits in Chinese working days, and what happens when they pass.

Owns the working-day calendar (State Council data with policy overrides), pure deadline
arithmetic, the time-limit policy file, the clocks of a task (accept, resolve, verify) and the
deadline state they give, and the sweep that takes each warning, overdue and escalation step once.
"""
