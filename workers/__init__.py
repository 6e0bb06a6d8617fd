"""dramatiq broker setup and actors (routing now; supervision, notification and monthly jobs later)."""
