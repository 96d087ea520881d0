"""``request_id`` and ``otel_trace_id``: the client's and the tracing system's ids of a
response, kept beside the server-minted ``trace_id`` for correlation only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("feedback_asgi", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="aifeedback",
            name="request_id",
            field=models.CharField(blank=True, max_length=255, null=True,
                                   verbose_name="request id"),
        ),
        migrations.AddField(
            model_name="aifeedback",
            name="otel_trace_id",
            field=models.CharField(blank=True, max_length=255, null=True,
                                   verbose_name="OpenTelemetry trace id"),
        ),
        migrations.AddIndex(
            model_name="aifeedback",
            index=models.Index(fields=["request_id", "created_at", "id"],
                               name="ix_ai_feedback_request_id"),
        ),
        migrations.AddIndex(
            model_name="aifeedback",
            index=models.Index(fields=["otel_trace_id", "created_at", "id"],
                               name="ix_ai_feedback_otel_trace_id"),
        ),
    ]
