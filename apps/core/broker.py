"""What the broker holds, asked of the broker itself (through kombu, so Redis and RabbitMQ
answer the same question)."""

from __future__ import annotations

import logging

from celery import current_app

logger = logging.getLogger(__name__)

BROKER_PROBE_TIMEOUT_SECONDS = 2.0


def broker_ready_counts(queues: list[str]) -> dict[str, int] | None:
    """Messages waiting (not yet delivered to a worker) on each queue; a queue the broker
    does not know has none. None when the broker cannot be asked."""
    counts: dict[str, int] = {}
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_PROBE_TIMEOUT_SECONDS)
            for name in queues:
                channel = connection.channel()
                try:
                    counts[name] = channel.queue_declare(queue=name, passive=True).message_count
                except connection.channel_errors:
                    counts[name] = 0  # the broker lost the queue itself (a restart without persistence)
                finally:
                    try:
                        channel.close()
                    except Exception:  # a channel closed by the broker's 404 is closed already
                        pass
    except Exception:
        logger.warning("could not ask the broker for its queue sizes", exc_info=True)
        return None
    return counts
