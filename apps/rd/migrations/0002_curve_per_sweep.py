"""RD curves per sweep: a curve belongs to one rd_sweep run and its graph.

The old tables merged points of different graphs by level per session; those merged
curves cannot be split back into sweeps faithfully, so they are dropped (the runs'
own results still hold every sweep's points).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compute_sessions", "0001_initial"),
        ("rd", "0001_initial"),
        ("runs", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(name="RDKnee"),
        migrations.DeleteModel(name="RDPoint"),
        migrations.CreateModel(
            name="RDCurve",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("nodes", models.PositiveIntegerField(help_text="Nodes of the swept graph.")),
                ("knee_level", models.PositiveIntegerField(blank=True, null=True)),
                ("knee_rate", models.FloatField(blank=True, null=True)),
                ("knee_distortion", models.FloatField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "run",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE, related_name="rd_curve", to="runs.run"
                    ),
                ),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rd_curves",
                        to="compute_sessions.session",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["session", "-created_at"], name="rd_curve_session_idx")],
            },
        ),
        migrations.CreateModel(
            name="RDPoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("level", models.PositiveIntegerField()),
                ("rate", models.FloatField()),
                ("distortion", models.FloatField()),
                (
                    "curve",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="points", to="rd.rdcurve"
                    ),
                ),
            ],
            options={
                "ordering": ["curve", "level"],
                "constraints": [models.UniqueConstraint(fields=("curve", "level"), name="rd_point_unique_level")],
            },
        ),
    ]
