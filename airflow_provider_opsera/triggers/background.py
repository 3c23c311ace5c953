"""Tasks a trigger starts and does not see to their end.

The event loop holds only weak references to its tasks, so one nobody awaits can vanish
half-way; these are held here until they end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_UNDER_WAY: set[asyncio.Task] = set()


def start_in_background(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
    """Run ``coroutine`` in a task of its own on the running loop, held until it ends."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _UNDER_WAY.add(task)
    task.add_done_callback(_UNDER_WAY.discard)
    return task
