"""Fewer indexes on runs: each one is written on every insert and every status change.

- owner and session: their single-column indexes duplicate the leading column of
  run_owner_created_idx and run_session_created_idx; a run event's run, that of
  run_event_run_id_idx.
- kind: its index stays (the metric history and the run list filter by kind), renamed to
  run_kind_idx; PostgreSQL's varchar_pattern_ops twin goes (no query matches kinds with LIKE).
  On PostgreSQL the index is renamed, not rebuilt: a rebuild would block writes to the table.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

OLD_KIND_INDEX = "runs_run_kind_d9405b85"


def keep_kind_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX IF EXISTS {OLD_KIND_INDEX} RENAME TO run_kind_idx")
        schema_editor.execute(f"DROP INDEX IF EXISTS {OLD_KIND_INDEX}_like")
        return
    run = apps.get_model("runs", "Run")
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, run._meta.db_table)
    for name, info in constraints.items():
        if info["index"] and info["columns"] == ["kind"] and not info["unique"]:
            schema_editor.execute(schema_editor._delete_index_sql(run, name))
    schema_editor.add_index(run, models.Index(fields=["kind"], name="run_kind_idx"))


def restore_kind_index(apps, schema_editor):
    run = apps.get_model("runs", "Run")
    schema_editor.remove_index(run, models.Index(fields=["kind"], name="run_kind_idx"))
    field = run._meta.get_field("kind")
    schema_editor.execute(schema_editor._create_index_sql(run, fields=[field], name=OLD_KIND_INDEX))
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(schema_editor._create_like_index_sql(run, field))


class Migration(migrations.Migration):
    dependencies = [
        ("compute_sessions", "0002_session_policy_reference"),
        ("runs", "0005_run_finished_at_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="run",
                    name="kind",
                    field=models.CharField(max_length=64),
                ),
                migrations.AddIndex(
                    model_name="run",
                    index=models.Index(fields=["kind"], name="run_kind_idx"),
                ),
            ],
            database_operations=[migrations.RunPython(keep_kind_index, restore_kind_index)],
        ),
        migrations.AlterField(
            model_name="run",
            name="owner",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="runs",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="run",
            name="session",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="runs",
                to="compute_sessions.session",
            ),
        ),
        migrations.AlterField(
            model_name="runevent",
            name="run",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="runs.run",
            ),
        ),
    ]
