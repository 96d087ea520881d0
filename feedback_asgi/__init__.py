"""feedback-asgi: collect user feedback on AI outputs in any ASGI or Django app.

The names most apps need are importable from here::

    from feedback_asgi import FeedbackKit, FeedbackMiddleware, FeedbackContext

Importing this package loads no web framework, no database driver and no Redis client;
those load when the integration or store that needs them is used.
"""

from feedback_asgi.context import FeedbackContext, current_context
from feedback_asgi.core.config import ConfigIssue, FeedbackConfig
from feedback_asgi.core.exceptions import (
    ConfigurationError,
    FeedbackError,
    FeedbackProcessingError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import (
    Exchange,
    FeedbackItem,
    FeedbackKind,
    FeedbackSummary,
    FeedbackType,
)
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.core.tokens import TokenClaims, TokenError, TokenSigner
from feedback_asgi.feedback.collector import FeedbackCollector
from feedback_asgi.feedback.hooks import (
    FeedbackHooks,
    FeedbackProcessedHook,
    FeedbackStoredHook,
    FeedbackSubmittedEvent,
    FeedbackSubmittedHook,
    audit_log_hook,
    combine_hooks,
    require_comment_for_negative,
)
from feedback_asgi.feedback.processors import (
    FeedbackProcessor,
    FeedbackProcessorRegistry,
    ProcessedFeedback,
)
from feedback_asgi.feedback.service import FeedbackService
from feedback_asgi.kit import FeedbackKit, get_default_kit
from feedback_asgi.middleware import FeedbackMiddleware
from feedback_asgi.storage.base import ExchangeStoreProtocol, FeedbackStoreProtocol, Page
from feedback_asgi.web.endpoint import create_feedback_endpoint

__version__ = "0.1.0"

__all__ = [
    "ConfigIssue",
    "ConfigurationError",
    "Err",
    "Exchange",
    "ExchangeStoreProtocol",
    "FeedbackCollector",
    "FeedbackConfig",
    "FeedbackContext",
    "FeedbackError",
    "FeedbackHooks",
    "FeedbackItem",
    "FeedbackKind",
    "FeedbackKit",
    "FeedbackMiddleware",
    "FeedbackProcessedHook",
    "FeedbackProcessingError",
    "FeedbackProcessor",
    "FeedbackProcessorRegistry",
    "FeedbackService",
    "FeedbackStoreProtocol",
    "FeedbackStoredHook",
    "FeedbackSubmittedEvent",
    "FeedbackSubmittedHook",
    "FeedbackSummary",
    "FeedbackType",
    "FeedbackValidationError",
    "Ok",
    "Page",
    "ProcessedFeedback",
    "Result",
    "StorageUnavailableError",
    "TokenClaims",
    "TokenError",
    "TokenSigner",
    "__version__",
    "audit_log_hook",
    "combine_hooks",
    "create_feedback_endpoint",
    "current_context",
    "get_default_kit",
    "require_comment_for_negative",
]
