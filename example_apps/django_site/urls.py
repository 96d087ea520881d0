"""The chat view, the feedback routes and the admin."""

from django.contrib import admin
from django.urls import include, path

from example_apps.django_site import views

urlpatterns = [
    path("chat/", views.chat),
    path("feedback/", include("feedback_asgi.integrations.django.urls")),
    path("admin/", admin.site.urls),
]
