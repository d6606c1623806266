"""Fixtures of the fault-injection suite (`pytest -m faults`): real stores in temp folders, a real Redis on a
free 127.0.0.1 port, worker subprocesses that are killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

#: Attempts per fault scenario; FAULT_ATTEMPTS=10 reproduces the counts in docs/operations.md.
ATTEMPTS = int(os.environ.get("FAULT_ATTEMPTS", "1"))
#: A forked worker still running after this long is killed (the test then fails instead of hanging).
WORKER_TIMEOUT_S = float(os.environ.get("FAULT_WORKER_TIMEOUT", "600"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def report(name: str, **counts: object) -> None:
    """One line per scenario with its counts (shown by `pytest -m faults -s`; docs/operations.md)."""
    print(f"\n[faults] {name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


class RedisServer:
    """redis-server on a free port with an append-only file fsynced on every write (so an acknowledged push
    survives a kill -9 of Redis)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.proc = folder, free_port(), None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("faults: redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.kill()


class Worker:
    """A pushing process forked from the test process (the libraries are imported already, so it starts in
    milliseconds instead of the ~20 s a fresh interpreter takes on a loaded 2-core machine). It writes
    `BEGIN b` / `ACK b` lines to a pipe with one os.write each; `kill()` sends SIGKILL."""

    def __init__(self, *args: str) -> None:
        import multiprocessing

        read_fd, write_fd = os.pipe()
        self.process = multiprocessing.get_context("fork").Process(target=_child, args=(write_fd, args))
        self.process.start()
        os.close(write_fd)
        self.stdout = os.fdopen(read_fd, "r")
        # a forked child that hangs (a lock held by another thread at fork time) is killed, never waited on forever
        self._watchdog = threading.Timer(WORKER_TIMEOUT_S, self.kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    def kill(self) -> None:
        try:
            os.kill(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self) -> tuple[int, str]:
        """(exit code, remaining output)."""
        rest = self.stdout.read()
        self.process.join(60)
        self._watchdog.cancel()
        self.stdout.close()
        return self.process.exitcode, rest


def _child(write_fd: int, args: tuple[str, ...]) -> None:
    from tests.faults import worker

    def emit(line: str) -> None:
        os.write(write_fd, (line + "\n").encode())

    try:
        worker.main(list(args), emit)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then a non-zero exit
        emit(f"ERROR {type(exc).__name__}: {exc}".replace("\n", " "))
        os._exit(1)
    os._exit(0)


def start_worker(*args: str) -> Worker:
    return Worker(*args)
