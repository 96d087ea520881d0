"""``path("feedback/", include("feedback_asgi.integrations.django.urls"))``.

The same routes and JSON as the ASGI endpoint: ``POST /`` (token-authenticated, no CSRF
cookie needed), ``GET sessions/<id>`` (the caller's own session, or staff), ``GET health``,
``GET widget.js`` (the browser widget).
Keep ``FEEDBACK_ASGI["path"]`` equal to where you mount them (check ``feedback_asgi.W005``).
"""

from __future__ import annotations

from django.urls import path

from feedback_asgi.integrations.django.views import feedback_view

app_name = "feedback_asgi"

urlpatterns = [
    path("", feedback_view, {"route": "/"}, name="submit"),
    path("health", feedback_view, {"route": "/health"}, name="health"),
    path("sessions/<str:session_id>", feedback_view, name="session"),
    # the browser widget: {% url "feedback_asgi:widget" %} in a template's <script src>
    path("widget.js", feedback_view, {"route": "/widget.js"}, name="widget"),
    # The read/admin routes (stats, list, export, dashboard) arrive with later issues:
    # add them here, wrapped in views.reader_required (staff only).
    path("<path:rest>", feedback_view, name="other"),  # JSON 404/405 as the endpoint answers
]
