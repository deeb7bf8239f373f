import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tutor", "0003_hint_dialogue"),
    ]

    operations = [
        migrations.AddField(
            model_name="classroom",
            name="condition",
            field=models.CharField(
                blank=True,
                help_text="The study condition this class is in, if any (written to research exports).",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="attempt",
            name="item_version",
            field=models.PositiveIntegerField(default=1, help_text="The item's version when it was answered."),
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("reset-password", "Reset a learner's password"),
                            ("move-learner", "Moved a learner to another class"),
                            ("remove-learner", "Removed a learner from a class"),
                            ("archive-class", "Archived a class"),
                            ("restore-class", "Restored an archived class"),
                        ],
                        max_length=32,
                    ),
                ),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField()),
                (
                    "actor",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_actions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "classroom",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="tutor.classroom",
                    ),
                ),
                (
                    "subject",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_subjects",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["classroom", "-created_at"], name="audit_classroom_recent")],
            },
        ),
    ]
