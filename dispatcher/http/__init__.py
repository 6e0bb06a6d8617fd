"""The HTTP server the JSON API and the staff pages share: the app, authentication, sessions, errors.

``create_app`` mounts ``dispatcher.api`` and ``dispatcher.web`` side by side; neither imports
the other. Authentication (source and user tokens, the web session and its CSRF token) and the
mapping of domain errors to status codes live here, once, for both.
"""
