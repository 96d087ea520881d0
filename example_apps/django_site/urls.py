"""The chat page (login, CSRF, widget), the chat API, the feedback routes and the admin."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from example_apps.django_site import pages, views

urlpatterns = [
    path("", pages.chat_page, name="chat_page"),
    path("ask/", pages.ask, name="ask"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("chat/", views.chat),
    path("feedback/", include("feedback_asgi.integrations.django.urls")),
    path("admin/", admin.site.urls),
    *staticfiles_urlpatterns(),  # DEBUG only; behind a real server, collectstatic instead
]
