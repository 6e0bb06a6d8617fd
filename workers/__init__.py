"""The workers: the dramatiq broker and the actors (routing, supervision, webhook delivery)."""
