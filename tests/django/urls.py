"""URLs of the test project: the admin, the feedback routes and a few app views."""

from django.contrib import admin
from django.urls import include, path

from tests.django import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("feedback/", include("feedback_asgi.integrations.django.urls")),
    path("sync/", views.sync_answer),
    path("async/", views.async_answer),
    path("async/context/", views.async_context),
    path("whoami/", views.whoami),
    path("echo/", views.echo_body),
    path("upload/", views.upload),
    path("chunks/", views.read_chunks),
    path("stream/sync/", views.stream_sync),
    path("stream/async/", views.stream_async),
    path("sse/", views.sse),
    path("sse/gate/", views.sse_gate),
    path("file/", views.file_download),
    path("boom/", views.boom),
    path("form/", views.form_post),
    path("staff-only/", views.staff_only),
    path("public/sync/", views.public_sync),
    path("public/async/", views.public_async),
    path("whoami/sync/", views.whoami_sync),
    path("status/<int:status>/", views.status),
    path("sse/ending/<str:ending>/", views.sse_ending),
    path("own-trace/", views.own_trace),
]
