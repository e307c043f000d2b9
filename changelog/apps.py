from django.apps import AppConfig


class ChangelogConfig(AppConfig):
    name = "changelog"
    verbose_name = "Change log"

    def ready(self) -> None:
        from auditlog.models import LogEntry
        from celery.signals import before_task_publish, task_postrun, task_prerun
        from django.db.models.signals import pre_save

        from changelog import receivers

        pre_save.connect(receivers.stamp, sender=LogEntry, dispatch_uid="changelog.stamp")
        before_task_publish.connect(receivers.task_published, dispatch_uid="changelog.task_published", weak=False)
        task_prerun.connect(receivers.task_started, dispatch_uid="changelog.task_started", weak=False)
        task_postrun.connect(receivers.task_finished, dispatch_uid="changelog.task_finished", weak=False)
