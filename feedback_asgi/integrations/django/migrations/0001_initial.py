"""The ``ai_feedback`` table (the SQLAlchemy store's schema, see ``storage/sql/schema.py``).

Ids sort by code point on every backend, as in Python: PostgreSQL gets the "C" collation
on the id columns, MariaDB/MySQL ``utf8mb4_bin``; SQLite compares bytes already. If
``feedback-asgi db upgrade`` created this table in the same database first, run
``manage.py migrate feedback_asgi --fake-initial``.
"""

from typing import Any

from django.db import migrations, models

_ID_COLUMNS = ("id", "supersedes", "root_id")


def _binary_id_collation(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    for column in _ID_COLUMNS:
        if vendor == "postgresql":
            schema_editor.execute(
                f'ALTER TABLE ai_feedback ALTER COLUMN {column} TYPE varchar(128) COLLATE "C"'
            )
        elif vendor == "mysql":
            null = "NOT NULL" if column != "supersedes" else "NULL"
            schema_editor.execute(
                f"ALTER TABLE ai_feedback MODIFY {column} varchar(128) "
                f"CHARACTER SET utf8mb4 COLLATE utf8mb4_bin {null}"
            )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='AiFeedback',
            fields=[
                ('id', models.CharField(max_length=128, primary_key=True, serialize=False)),
                ('kind', models.CharField(max_length=32, verbose_name='type')),
                ('created_at', models.DateTimeField(verbose_name='created')),
                ('trace_id', models.CharField(blank=True, max_length=255, null=True, verbose_name='trace id')),
                ('session_id', models.CharField(blank=True, max_length=255, null=True, verbose_name='session id')),
                ('user_id', models.CharField(blank=True, max_length=255, null=True, verbose_name='user id')),
                ('model', models.CharField(blank=True, max_length=255, null=True, verbose_name='model')),
                ('provider', models.CharField(blank=True, max_length=255, null=True, verbose_name='provider')),
                ('intent', models.CharField(blank=True, max_length=255, null=True, verbose_name='intent')),
                ('project', models.CharField(blank=True, max_length=255, null=True, verbose_name='project')),
                ('endpoint', models.CharField(blank=True, max_length=255, null=True, verbose_name='endpoint')),
                ('rating', models.FloatField(blank=True, null=True)),
                ('thumbs', models.SmallIntegerField(blank=True, choices=[(1, 'up'), (-1, 'down')], null=True)),
                ('supersedes', models.CharField(blank=True, max_length=128, null=True)),
                ('tombstone', models.BooleanField(default=False)),
                ('is_live', models.BooleanField(default=True, verbose_name='live')),
                ('root_id', models.CharField(max_length=128)),
                ('value', models.JSONField(blank=True, null=True)),
                ('context', models.JSONField(default=dict)),
                ('meta', models.JSONField(db_column='metadata', default=dict, verbose_name='metadata')),
            ],
            options={
                'verbose_name': 'AI feedback',
                'verbose_name_plural': 'AI feedback',
                'db_table': 'ai_feedback',
                'ordering': ('-created_at', '-id'),
                'indexes': [models.Index(fields=['created_at', 'id'], name='ix_ai_feedback_created_at'), models.Index(fields=['session_id', 'created_at', 'id'], name='ix_ai_feedback_session_id'), models.Index(fields=['trace_id', 'created_at', 'id'], name='ix_ai_feedback_trace_id'), models.Index(fields=['kind', 'created_at', 'id'], name='ix_ai_feedback_kind'), models.Index(fields=['model', 'created_at', 'id'], name='ix_ai_feedback_model'), models.Index(fields=['user_id', 'created_at', 'id'], name='ix_ai_feedback_user_id'), models.Index(fields=['root_id'], name='ix_ai_feedback_root_id'), models.Index(condition=models.Q(('is_live', True)), fields=['created_at'], name='ix_ai_feedback_live_window')],
                'constraints': [models.UniqueConstraint(fields=('supersedes',), name='uq_ai_feedback_supersedes')],
            },
        ),
        migrations.RunPython(_binary_id_collation, migrations.RunPython.noop, elidable=False),
    ]
