"""The file lock that shared caches are built under, and the waiting it accounts for."""
import threading
import time
from pathlib import Path

from transfer import timing
from transfer.locks import file_lock


def test_a_held_lock_blocks_and_the_wait_is_accounted(tmp_path: Path) -> None:
    lock, held, order = tmp_path / "cache.lock", threading.Event(), []

    def holder() -> None:
        with file_lock(lock):
            held.set()
            time.sleep(0.3)
            order.append("holder released")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    before = timing.snapshot().get("lock_wait", 0.0)
    with file_lock(lock):
        order.append("waiter acquired")
    thread.join()
    assert order == ["holder released", "waiter acquired"]
    assert timing.snapshot()["lock_wait"] - before >= 0.2
