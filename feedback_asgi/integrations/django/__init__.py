"""The Django integration: a reusable app for ``INSTALLED_APPS``.

::

    INSTALLED_APPS += ["feedback_asgi.integrations.django"]
    MIDDLEWARE += ["feedback_asgi.integrations.django.middleware.FeedbackMiddleware"]
    FEEDBACK_ASGI = {"secret_key": "...", "allowed_origins": ["https://app.example"]}
    # urls.py
    path("feedback/", include("feedback_asgi.integrations.django.urls"))

Settings: one ``FEEDBACK_ASGI`` dict with the keys of :class:`~feedback_asgi.core.config.FeedbackConfig`
(``FEEDBACK_ASGI_*`` environment variables override it), read through
:mod:`feedback_asgi.integrations.django.conf`. Feedback rows live in the app's own database
(model ``AiFeedback``, table ``ai_feedback``) through :class:`DjangoFeedbackStore`, unless
``database_url`` is set, which selects the SQLAlchemy store.
"""

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "feedback_asgi.integrations.django needs Django: pip install 'feedback-asgi[django]'"
    ) from exc
