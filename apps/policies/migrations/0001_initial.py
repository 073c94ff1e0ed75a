import uuid

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The presets as they were when this migration was written (later edits are new versions).
PRESETS = {'permissive': {'auto_quarantine': True,
                'quarantine_severity': 10,
                'block_severity': 11,
                'merge_max_severity': 9,
                'blocked_flags': [],
                'require_human_review': False,
                'max_anomaly_severity': 10,
                'scan_outputs': False},
 'default': {'auto_quarantine': True,
             'quarantine_severity': 7,
             'block_severity': 9,
             'merge_max_severity': 6,
             'blocked_flags': ['malicious'],
             'require_human_review': False,
             'max_anomaly_severity': 8,
             'scan_outputs': True},
 'strict': {'auto_quarantine': True,
            'quarantine_severity': 5,
            'block_severity': 8,
            'merge_max_severity': 4,
            'blocked_flags': ['malicious', 'jailbreak'],
            'require_human_review': True,
            'max_anomaly_severity': 6,
            'scan_outputs': True}}


def _severity(help_text):
    return models.PositiveSmallIntegerField(
        help_text=help_text,
        validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(11)],
    )


def create_presets(apps, schema_editor):
    Policy = apps.get_model("policies", "Policy")
    PolicyVersion = apps.get_model("policies", "PolicyVersion")
    for name, values in PRESETS.items():
        policy = Policy.objects.create(name=name, description=f"The {name} preset.")
        version = PolicyVersion.objects.create(policy=policy, number=1, state="approved", **values)
        policy.active_version = version
        policy.save()


class Migration(migrations.Migration):
    initial = True
    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Policy",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100, unique=True)),
                ("description", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["name"], "verbose_name_plural": "policies"},
        ),
        migrations.CreateModel(
            name="PolicyVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField()),
                ("state", models.CharField(choices=[("draft", "Draft"), ("approved", "Approved")], default="draft", max_length=16)),
                ("approved_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("auto_quarantine", models.BooleanField()),
                ("quarantine_severity", _severity("Findings at or over this quarantine the trace (with auto_quarantine).")),
                ("block_severity", _severity("Input findings at or over this block the run (11: never).")),
                ("merge_max_severity", _severity("Open flags over this block a merge.")),
                ("blocked_flags", models.JSONField(blank=True, default=list, help_text="Flag types that block whatever their severity.")),
                ("require_human_review", models.BooleanField(help_text="Every flagged trace waits for a reviewer before merge.")),
                ("max_anomaly_severity", _severity("Metric anomalies over this quarantine the trace.")),
                ("scan_outputs", models.BooleanField()),
                (
                    "approved_by",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "author",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "policy",
                    models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="versions", to="policies.policy"),
                ),
            ],
            options={
                "ordering": ["policy", "-number"],
                "constraints": [models.UniqueConstraint(fields=("policy", "number"), name="policy_version_unique_number")],
            },
        ),
        migrations.AddField(
            model_name="policy",
            name="active_version",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="policies.policyversion"
            ),
        ),
        migrations.RunPython(create_presets, migrations.RunPython.noop),
    ]
