"""`reel serve` in a subprocess, for tests and benchmarks: real HTTP on 127.0.0.1, on a free
port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def reel_serve(
    templates: Path,
    data_dir: Path,
    *,
    workers: int | None = 1,
    env: dict[str, str] | None = None,
    start_timeout: float = 60,
) -> Iterator[tuple[str, str]]:
    """Start `reel serve` and yield (base URL, dev API key) once it is listening. `workers`
    None: the server's default; `env`: more environment for it."""
    args = ["serve", "--port", "0", "--data-dir", str(data_dir), "--templates", str(templates)]
    if workers is not None:
        args += ["--workers", str(workers)]
    wants = {
        "url": r"serving on (http://127\.0\.0\.1:\d+)",
        "key": r"dev API key \(x-api-key\): (\S+)",
    }
    with reel_process(args, wants, env=env, start_timeout=start_timeout) as found:
        yield found["url"], found["key"]


@contextmanager
def reel_studio(campaign: Path, data_dir: Path, *, start_timeout: float = 60) -> Iterator[str]:
    """Start `reel studio` on a campaign folder; yield the page's URL (with its key)."""
    args = ["studio", str(campaign), "--port", "0", "--no-open", "--data-dir", str(data_dir)]
    wants = {"url": r"Reel Studio on (http://127\.0\.0\.1:\d+/studio#key=\S+)"}
    with reel_process(args, wants, start_timeout=start_timeout) as found:
        yield found["url"]


@contextmanager
def reel_process(
    args: list[str],
    wants: dict[str, str],
    *,
    env: dict[str, str] | None = None,
    start_timeout: float = 60,
) -> Iterator[dict[str, str]]:
    """Run `reel ARGS` until it has printed a match of each pattern of `wants`; yield the first
    group of each, by name, and stop the process afterwards."""
    environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "REEL_API_KEYS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    assert proc.stdout is not None
    found: dict[str, str] = {}
    lines = []
    deadline = time.monotonic() + start_timeout
    try:
        while len(found) < len(wants) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            for name, pattern in wants.items():
                if m := re.search(pattern, line):
                    found[name] = m.group(1)
        assert len(found) == len(wants), "".join(lines)
        # Keep reading what the process prints, or a full pipe would block it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield found
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def call(url: str, method: str = "GET", data: Any = None, key: str = "") -> tuple[int, Any]:
    """One request to the server: (status, the JSON answer — or the bytes of another kind)."""
    req = urllib.request.Request(url, method=method)
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        req.add_header("content-type", "application/json")
    if key:
        req.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(req, body, timeout=30) as resp:
            raw = resp.read()
            kind = resp.headers.get("content-type", "")
            return resp.status, json.loads(raw) if "json" in kind else raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
