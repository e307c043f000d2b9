"""The change log: who changed what, when, before and after, grouped by request or task.

A small package under both `capacity` and `hosting` (it imports neither): django-auditlog
records every save and delete of the registered models (settings.AUDITLOG_INCLUDE_TRACKING_MODELS)
through its signals; `changelog.record` records the bulk writes signals never see
(bulk_create, bulk_update, QuerySet.update); `changelog.context` says who is acting
(a session user, an API token, a Celery task) and under which request id. See docs/changes.md.
"""
