"""`reel serve` answers each connection on its own thread: a request must never see another's."""

from __future__ import annotations

import threading

from chalicelib.api import ReelApp


def test_each_thread_sees_its_own_request() -> None:
    # GIVEN an app of Reel's class (as app.py makes it, and `reel serve` serves it unchanged)
    app = ReelApp(app_name="threads")
    seen: dict[str, object] = {}
    both_set = threading.Barrier(2, timeout=10)

    def handle(name: str) -> None:
        app.current_request = name  # type: ignore[assignment]  # what Chalice does on a request
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


def test_the_served_app_is_reels_own_class() -> None:
    from app import app

    # The server wraps the app as it is: the per-thread request is the app's own, not a patch.
    assert type(app) is ReelApp
