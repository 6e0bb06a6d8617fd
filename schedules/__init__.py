"""The scheduler process: outbox relay now; leader lock, deadline sweep and monthly jobs later."""
