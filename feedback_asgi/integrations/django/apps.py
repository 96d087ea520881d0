"""The app config: label ``feedback_asgi``; registers the system checks in ``ready()``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed


class FeedbackAsgiConfig(AppConfig):
    """``INSTALLED_APPS += ["feedback_asgi.integrations.django"]``."""

    name = "feedback_asgi.integrations.django"
    label = "feedback_asgi"
    verbose_name = "AI feedback"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from feedback_asgi.integrations.django.checks import (
            check_middleware_order,
            check_settings,
            check_urls,
        )
        from feedback_asgi.integrations.django.conf import reset_kit

        checks.register(check_settings, checks.Tags.security)
        checks.register(check_middleware_order, checks.Tags.compatibility)
        checks.register(check_urls, checks.Tags.urls)

        def on_setting_changed(setting: str, **kwargs: Any) -> None:
            if setting in ("FEEDBACK_ASGI", "DATABASES"):
                reset_kit()

        setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="feedback_asgi_conf")
