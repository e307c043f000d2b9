"""The Celery app: broker and task defaults come from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hosting.settings")

app = Celery("hosting")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["hosting.commissioning"])
app.autodiscover_tasks(["hosting.telemetry"], related_name="tasks_store")
app.autodiscover_tasks(["hosting.curtailment"], related_name="tasks_signals")
