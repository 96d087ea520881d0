"""The web dashboard at ``{path}/dashboard``: figures, charts and the latest negative feedback.

Served by the neutral endpoint, so every adapter (the middleware, Starlette routes, the
FastAPI router, the Django urls) has it. :mod:`~feedback_asgi.dashboard.routes` answers the
requests, :mod:`~feedback_asgi.dashboard.session` signs the sign-in cookie,
:mod:`~feedback_asgi.dashboard.data` reads the figures, and
:mod:`~feedback_asgi.dashboard.render` / :mod:`~feedback_asgi.dashboard.charts` write the
HTML and SVG (no script).
"""
