"""feedback-asgi."""
