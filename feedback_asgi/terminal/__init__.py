"""What the ``feedback-asgi`` command does besides ``db``: export, stats, dashboard, demo.

Needs the ``cli`` extra (typer, rich); nothing in the library imports this package.
"""
