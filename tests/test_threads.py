"""Native work on every core: parts cover the list in order, results come back in order, also after a fork."""

from __future__ import annotations

import os
import signal

from kademe.threads import cores, map_parts, parts


def test_parts_cover_the_items_in_order_with_balanced_weight():
    items = ["x" * n for n in (5, 1, 1, 1, 1, 1, 5, 5)]
    cut = parts(items)
    assert [x for p in cut for x in p] == items
    assert len(cut) == min(cores(), len(items))
    if len(cut) == 2:
        assert abs(sum(map(len, cut[0])) - sum(map(len, cut[1]))) <= 5


def test_map_parts_returns_results_in_input_order_even_in_a_forked_child():
    items = [str(i) for i in range(50)]
    assert map_parts(lambda p: [x + "!" for x in p], items) == [x + "!" for x in items]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's copy of the pool has no threads: it must make its own
        signal.alarm(30)  # a hang kills the child: the parent then reads nothing and fails
        ok = map_parts(lambda p: [x * 2 for x in p], items) == [x * 2 for x in items]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
