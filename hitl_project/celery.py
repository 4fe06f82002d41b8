import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_project.settings")

app = Celery("hitl_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_periodic_work(sender, **kwargs):
    # One list of periodic work serves both celery beat and the embedded scheduler.
    from bridge.tasks import PERIODIC

    for every, task in PERIODIC:
        sender.add_periodic_task(every, task.s(), name=task.name)
