"""What the ``feedback-asgi`` command does besides ``db``: export, stats, dashboard, demo.

Needs the ``cli`` extra (typer, rich), except :mod:`.escape` (no dependency), which the
Django management commands use too; nothing else in the library imports this package.
"""
