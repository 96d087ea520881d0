"""The configuration, under the import path the README and apps use.

The code lives in :mod:`feedback_asgi.core.config`; this module only names it.
"""

from feedback_asgi.core.config import ENV_PREFIX, ConfigIssue, FeedbackConfig

__all__ = ["ENV_PREFIX", "ConfigIssue", "FeedbackConfig"]
