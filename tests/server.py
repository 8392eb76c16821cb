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
    environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "REEL_API_KEYS": ""}
    args = ["serve", "--port", "0", "--data-dir", str(data_dir), "--templates", str(templates)]
    if workers is not None:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    assert proc.stdout is not None
    url = key = None
    lines = []
    deadline = time.monotonic() + start_timeout
    try:
        while (url is None or key is None) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"serving on (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
            if m := re.search(r"dev API key \(x-api-key\): (\S+)", line):
                key = m.group(1)
        assert url and key, "".join(lines)
        # Keep reading what the server prints, or a full pipe would block it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield url, key
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
