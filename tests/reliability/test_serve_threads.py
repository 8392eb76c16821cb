"""`reel serve` answers each connection on its own thread: a request must never see another's."""

from __future__ import annotations

import threading

from chalicelib.cli import _per_thread_requests


def test_each_thread_sees_its_own_request() -> None:
    from app import app

    # GIVEN the app as `reel serve` runs it
    _per_thread_requests(app)
    _per_thread_requests(app)  # idempotent: serve and demo may both prepare it
    seen: dict[str, object] = {}
    both_set = threading.Barrier(2, timeout=10)

    def handle(name: str) -> None:
        app.current_request = name  # what Chalice does when a request arrives
        both_set.wait()  # WHEN the other thread's request arrives meanwhile
        seen[name] = app.current_request

    threads = [threading.Thread(target=handle, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # THEN each handler still reads its own request (a shared attribute would give one name)
    assert seen == {"first": "first", "second": "second"}
    assert app.current_request is None  # and the main thread has none
