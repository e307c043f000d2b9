"""Seed the machine catalog (hosting.catalog) so that every installation starts with it."""

from django.db import migrations


def load_catalog(apps, schema_editor):
    from hosting.catalog import MACHINE_MODELS

    MachineModel = apps.get_model("hosting", "MachineModel")
    for entry in MACHINE_MODELS:
        fields = {k: v for k, v in entry.items() if k != "slug"}
        MachineModel.objects.update_or_create(slug=entry["slug"], defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("hosting", "0001_initial")]

    operations = [migrations.RunPython(load_catalog, migrations.RunPython.noop)]
