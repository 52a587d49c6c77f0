"""Tasks: what differs between classification and segmentation, over one set of shared parts.

>>> from medlens.tasks import train_run
>>> run = train_run(load_config("configs/hippocampus.yaml"))   # doctest: +SKIP

A :class:`Task` checks a config against its data before anything is written, builds the
model, loaders and loss for the one :class:`~medlens.training.loop.Trainer`, validates, and
fills its section of the one model card. :func:`make_task` picks the task from the config
and the data; :func:`train_run` runs the same steps for every task.
"""

from __future__ import annotations

from medlens.tasks.base import Task, TaskSetup
from medlens.tasks.classification import ClassificationTask
from medlens.tasks.run import build_manifest, make_task, train_run
from medlens.tasks.segmentation import SegmentationTask

__all__ = [
    "ClassificationTask",
    "SegmentationTask",
    "Task",
    "TaskSetup",
    "build_manifest",
    "make_task",
    "train_run",
]
