"""A URLconf that forgets to mount the feedback URLs (check W004)."""

from django.urls import path

from tests.django import views

urlpatterns = [path("sync/", views.sync_answer)]
