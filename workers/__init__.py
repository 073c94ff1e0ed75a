"""Celery tasks (thin), queue routing, worker bootstrap and runners."""
