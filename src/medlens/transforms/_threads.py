"""Per-image work on one torch thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_thread() -> Iterator[None]:
    """Run per-image torch ops on one thread, then restore the setting.

    On small tensors more threads only contend: measured 5-10x slower with 2 threads on a
    busy 2-core machine. Loader workers already use one thread; this makes work done in
    the main process (``num_workers=0``) behave the same.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
