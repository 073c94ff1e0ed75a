"""Sessions point at a governance policy instead of naming a preset."""

import django.db.models.deletion
from django.db import migrations, models


def bind_policies(apps, schema_editor):
    Session = apps.get_model("compute_sessions", "Session")
    Policy = apps.get_model("policies", "Policy")
    by_name = {policy.name: policy for policy in Policy.objects.all()}
    for session in Session.objects.all():
        session.policy_ref = by_name.get(session.policy) or by_name["default"]
        session.save(update_fields=["policy_ref"])


class Migration(migrations.Migration):
    dependencies = [("compute_sessions", "0001_initial"), ("policies", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="session",
            name="policy_ref",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="policies.policy"
            ),
        ),
        migrations.RunPython(bind_policies, migrations.RunPython.noop),
        migrations.RemoveField(model_name="session", name="policy"),
        migrations.RenameField(model_name="session", old_name="policy_ref", new_name="policy"),
        migrations.AlterField(
            model_name="session",
            name="policy",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="sessions", to="policies.policy"
            ),
        ),
    ]
