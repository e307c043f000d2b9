"""Fill the catalog's new commissioning figures (pyasic model names)."""

from django.db import migrations


def load_catalog(apps, schema_editor):
    from hosting import catalog

    catalog.load(apps.get_model("hosting", "MachineModel"))


class Migration(migrations.Migration):
    dependencies = [("hosting", "0004_commissioning")]

    operations = [migrations.RunPython(load_catalog, migrations.RunPython.noop)]
