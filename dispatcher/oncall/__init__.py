"""On-call (值班): the state of the queue, dead letters and alerts (DESIGN §2, §9).

Not built yet (issue 9). Will own the queue figures read from the broker and the database, dead
letters and their retries, and the alert rules that fire once when a condition starts and once
when it clears.
"""
