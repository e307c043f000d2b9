"""Seed the machine catalog (hosting.catalog) so that every installation starts with it."""

from django.db import migrations


def load_catalog(apps, schema_editor):
    from hosting import catalog

    catalog.load(apps.get_model("hosting", "MachineModel"))


class Migration(migrations.Migration):
    dependencies = [("hosting", "0001_initial")]

    operations = [migrations.RunPython(load_catalog, migrations.RunPython.noop)]
