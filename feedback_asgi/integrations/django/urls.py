"""``path("feedback/", include("feedback_asgi.integrations.django.urls"))``.

The same routes and JSON as the ASGI endpoint: ``POST /`` (token-authenticated, no CSRF
cookie needed), ``GET sessions/<id>`` (the caller's own session, or staff), ``GET health``,
``GET widget.js`` (the browser widget), and the read/admin routes: ``GET stats``,
``GET stats/timeseries``, ``GET /`` (listing), ``GET/PUT/PATCH/DELETE <feedback_id>``,
``POST export`` and ``POST export/<kind>`` (``{% url "feedback_asgi:export" %}``, with
``kind="kto"`` for instance: the training data streamed as ``application/x-ndjson``), and
the web dashboard (``dashboard``, ``dashboard/login``), whose export button posts Django's
CSRF token. Read/admin routes are for staff (or the ``view_aifeedback`` permission); an
unsafe method needs Django's CSRF token for those rights (the admin bearer token does not).
Keep ``FEEDBACK_ASGI["path"]`` equal to where you mount them (check ``feedback_asgi.W005``).
"""

from __future__ import annotations

from django.urls import path

from feedback_asgi.integrations.django.export_view import export_view
from feedback_asgi.integrations.django.views import feedback_view

app_name = "feedback_asgi"

urlpatterns = [
    path("", feedback_view, {"route": "/"}, name="submit"),
    path("health", feedback_view, {"route": "/health"}, name="health"),
    path("sessions/<str:session_id>", feedback_view, name="session"),
    # the browser widget: {% url "feedback_asgi:widget" %} in a template's <script src>
    path("widget.js", feedback_view, {"route": "/widget.js"}, name="widget"),
    # read/admin routes: staff (or the view permission) only, checked by the endpoint through
    # the scope flag the view sets; an item's submitter may also read, edit and retract it
    path("stats", feedback_view, {"route": "/stats"}, name="stats"),
    path("stats/timeseries", feedback_view, {"route": "/stats/timeseries"}, name="timeseries"),
    # the export, streamed (POST; the kind in the path, or in the options: finetune by default)
    path("export", export_view, name="export"),
    path("export/<str:kind>", export_view, name="export"),
    # the web dashboard (staff, or the admin token's sign-in page): {% url "feedback_asgi:dashboard" %}
    path("dashboard", feedback_view, {"route": "/dashboard"}, name="dashboard"),
    path("dashboard/login", feedback_view, {"route": "/dashboard/login"}, name="dashboard_login"),
    path("<str:feedback_id>", feedback_view, name="item"),
    path("<path:rest>", feedback_view, name="other"),  # JSON 404/405 as the endpoint answers
]
