"""Device policy at submission: a run that asks for a backend or a GPU is checked
against what live workers offer (their heartbeats carry their capabilities), so it
is refused at once, naming what is missing, instead of accepted and failed later.

A run that asks for nothing in particular (`backend: auto`) is never refused: it
waits on its queue for a worker, which picks its best backend itself.
"""

from __future__ import annotations

from apps.core.exceptions import Conflict, ValidationFailed
from apps.core.queues import Queue
from apps.core.selectors import worker_live_list


class NoCapableWorker(Conflict):
    code = "no_capable_worker"


def _offered(*, queue: str, backend: str | None, gpu: bool) -> bool:
    for worker in worker_live_list(queue=queue):
        capabilities = worker.capabilities or {}
        if backend is not None and backend not in capabilities.get("backends", ()):
            continue
        if gpu and not capabilities.get("gpus"):
            continue
        return True
    return False


def queue_for_device(*, backend: str, device: str, default: Queue) -> str:
    """The queue for a run's backend/device request; NoCapableWorker when no live worker offers it."""
    wants_gpu = device == "gpu" or backend == "cupy"
    if wants_gpu and device == "cpu":
        raise ValidationFailed(
            fields={"backend": ["cupy runs on a GPU; it cannot be asked for with device cpu."]}
        )
    if wants_gpu:
        needed = None if backend == "auto" else backend
        if not _offered(queue=Queue.GPU.value, backend=needed, gpu=True):
            what = f"the {backend} backend on a GPU" if needed else "a GPU"
            raise NoCapableWorker(
                f"No live worker offers {what}: start a GPU worker (`GPU_INDEX=0 celery -A config worker "
                f"-Q gpu --pool solo`) or submit with device cpu / backend numpy."
            )
        return Queue.GPU.value
    if backend not in ("auto", "numpy") and not _offered(queue=default.value, backend=backend, gpu=False):
        raise NoCapableWorker(
            f"No live worker on the {default.value} queue offers the {backend} backend "
            f"(is {backend} installed on the workers?); submit with backend numpy or auto."
        )
    return default.value


def _model_offered(*, queue: str, model: str) -> bool:
    for worker in worker_live_list(queue=queue):
        capabilities = worker.capabilities or {}
        if capabilities.get("gpus") and model in capabilities.get("models", ()):
            return True
    return False


def queue_for_model_device(*, device: str, model: str, cpu_queue: Queue) -> str:
    """The queue for a model run asking for `device` ("cpu", "gpu", "gpu.<index>" or "auto").

    "cpu" waits on `cpu_queue`. "gpu" and "gpu.<index>" need a live GPU worker on that queue
    that serves `model` (NoCapableWorker otherwise). "auto" takes a GPU pool when one is alive
    and serves the model, else `cpu_queue`: never refused.
    """
    if device == "cpu":
        return cpu_queue.value
    if device == "auto":
        return Queue.GPU.value if _model_offered(queue=Queue.GPU.value, model=model) else cpu_queue.value
    if not _model_offered(queue=device, model=model):
        where = "a GPU" if device == Queue.GPU.value else f"GPU {device.split('.', 1)[1]}"
        raise NoCapableWorker(
            f"No live worker on {where} serves model {model!r}: start the GPU pool (`python -m "
            f"workers.gpu`) on a host that has the model's files, or submit with device cpu or auto."
        )
    return device
