"""Peer projects' own test suites, run without and with feedback-asgi (``make peer-suites``)."""
