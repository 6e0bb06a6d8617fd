"""Accounts: the upstream systems (sources) and staff users allowed to use the system.

Owns registering sources and users, their tokens (returned once, stored hashed) and first
passwords, and the roles a user holds.
"""
