"""Subscriptions' secrets sealed at rest: the column widened to hold a Fernet token, every
existing secret sealed. Reversed: unsealed (written plain, under the raw column) first."""

from django.db import migrations

import hosting.webhooks.models
import hosting.webhooks.sealing


def seal_existing(apps, schema_editor):
    # The historical model's field is the SealedCharField: reading unseals (plaintext as it
    # is), saving seals with the first key.
    Subscription = apps.get_model("webhooks", "Subscription")
    hosting.webhooks.sealing.reseal(Subscription, "secret", using=schema_editor.connection.alias)


def unseal_existing(apps, schema_editor):
    Subscription = apps.get_model("webhooks", "Subscription")
    table = schema_editor.quote_name(Subscription._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, secret FROM {table}")  # noqa: S608 - the table's own name
        rows = cursor.fetchall()
        for pk, stored in rows:
            plain = hosting.webhooks.sealing.unseal(stored)
            cursor.execute(f"UPDATE {table} SET secret = %s WHERE id = %s", [plain, pk])  # noqa: S608


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='subscription',
            name='secret',
            field=hosting.webhooks.sealing.SealedCharField(default=hosting.webhooks.models.new_secret, help_text='Signs each delivery (HMAC-SHA256); sealed at rest.', max_length=300),
        ),
        migrations.RunPython(seal_existing, unseal_existing, elidable=False),
    ]
