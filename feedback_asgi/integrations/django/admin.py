"""The admin: a read-only list of feedback with filters, search and a JSONL export action.

Rows are append-only, so nobody adds, edits or deletes them here: an edit is a new version
saved through the store. The detail page shows the rated input and output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from feedback_asgi.integrations.django.models import AiFeedback

__all__ = ["AiFeedbackAdmin"]

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[AiFeedback]
else:  # ModelAdmin is generic in the type stubs only
    _ModelAdmin = admin.ModelAdmin


def _pretty(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@admin.register(AiFeedback)
class AiFeedbackAdmin(_ModelAdmin):
    """Browse feedback; export the selected rows as JSON Lines."""

    list_display = ("created_at", "kind", "short_value", "thumbs", "rating", "model",
                    "short_comment", "is_live")
    list_filter = ("kind", "model", "thumbs", "created_at", "is_live")
    search_fields = ("meta__comment", "value__corrected", "value__original", "trace_id",
                     "session_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    actions = ("export_jsonl",)
    fieldsets = (
        (None, {"fields": ("id", "kind", "value_display", "comment_display", "created_at",
                           "is_live", "tombstone", "supersedes", "root_id")}),
        ("Rated exchange", {"fields": ("trace_id", "session_id", "user_id", "model", "provider",
                                       "intent", "project", "endpoint", "input_display",
                                       "output_display")}),
        ("Raw", {"classes": ("collapse",), "fields": ("context_display", "meta_display")}),
    )
    readonly_fields = ("id", "kind", "value_display", "comment_display", "created_at",
                       "is_live", "tombstone", "supersedes", "root_id", "trace_id",
                       "session_id", "user_id", "model", "provider", "intent", "project",
                       "endpoint", "input_display", "output_display", "context_display",
                       "meta_display")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AiFeedback | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AiFeedback | None = None) -> bool:
        return False

    @admin.display(description="value")
    def short_value(self, obj: AiFeedback) -> str:
        return _pretty(obj.value).replace("\n", " ")[:80]

    @admin.display(description="comment")
    def short_comment(self, obj: AiFeedback) -> str:
        return (obj.comment or "")[:80]

    @admin.display(description="value")
    def value_display(self, obj: AiFeedback) -> str:
        return format_html("<pre>{}</pre>", _pretty(obj.value))

    @admin.display(description="comment")
    def comment_display(self, obj: AiFeedback) -> str:
        return obj.comment or "-"

    @admin.display(description="rated input")
    def input_display(self, obj: AiFeedback) -> str:
        return format_html("<pre>{}</pre>", _pretty(obj.rated_input))

    @admin.display(description="rated output")
    def output_display(self, obj: AiFeedback) -> str:
        return format_html("<pre>{}</pre>", _pretty(obj.rated_output))

    @admin.display(description="context")
    def context_display(self, obj: AiFeedback) -> str:
        return format_html("<pre>{}</pre>", _pretty(obj.context))

    @admin.display(description="metadata")
    def meta_display(self, obj: AiFeedback) -> str:
        return format_html("<pre>{}</pre>", _pretty(obj.meta))

    @admin.action(description="Export selected feedback as JSONL", permissions=["view"])
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[AiFeedback]) -> HttpResponse:
        lines = (row.to_json() + "\n" for row in queryset.order_by("created_at", "id"))
        response = HttpResponse("".join(lines), content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="feedback.jsonl"'
        return response
