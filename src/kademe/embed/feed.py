"""The hand-off between the embed stage and the upsert stage running beside it, shard by shard (issue 14)."""

from __future__ import annotations

import threading

from kademe.interrupt import Interrupted


class ShardFeed:
    """Hands finished shards from the embed stage to the upsert stage, at most ``depth`` ahead.

    The shards themselves are files (renamed into place, so a visible shard is whole); the feed
    only says which are ready. If the consumer goes away (its task failed), the producer stops
    waiting and writes the rest to disk, where the retried consumer finds them.

    Example:
        >>> feed = ShardFeed(depth=2)
        >>> feed.put(0); feed.wait(0)
        True
    """

    def __init__(self, depth: int = 2):
        self.depth = depth
        self._cond = threading.Condition()
        self._ready: set[int] = set()
        self._taken = 0
        self._closed = False
        self._error: BaseException | None = None
        self._consumer_gone = False

    def put(self, i: int) -> None:
        """Shard ``i`` is on disk; wait while the consumer is ``depth`` shards behind."""
        with self._cond:
            self._ready.add(i)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._consumer_gone or len(self._ready) - self._taken < self.depth)

    def wait(self, i: int) -> bool:
        """Wait until shard ``i`` is ready; False when the producer finished without it (then read the disk)."""
        with self._cond:
            self._cond.wait_for(lambda: i in self._ready or self._closed)
            if i not in self._ready and self._error is not None:
                if isinstance(self._error, Interrupted):  # the run was asked to stop: so is the upsert
                    raise Interrupted()
                raise RuntimeError(f"the embed stage failed before shard {i}: {self._error}") from self._error
            return i in self._ready

    def taken(self) -> None:
        """The consumer finished one shard."""
        with self._cond:
            self._taken += 1
            self._cond.notify_all()

    def close(self, error: BaseException | None = None) -> None:
        """The producer is done (or failed with ``error``)."""
        with self._cond:
            self._closed, self._error = True, error
            self._cond.notify_all()

    def leave(self) -> None:
        """The consumer stops consuming (its task failed): never make the producer wait again."""
        with self._cond:
            self._consumer_gone = True
            self._cond.notify_all()
