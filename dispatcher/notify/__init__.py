"""Notifications (通知): what a unit must know, in its inbox and to its webhook.

Owns the notification rows the other domains add, the signed webhook deliveries with their
retries and failed list, and the relay that sends deliveries whose message was lost.
"""
