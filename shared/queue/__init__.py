"""The Celery application, the stage task base class and the ``ctriage worker`` command."""
