"""`clientsim-app` as a real server subprocess on 127.0.0.1, for the browser and tutorial tests."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"clientsim-app exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def serving(env: dict | None = None) -> Iterator[str]:
    """`clientsim-app` on a free port; yields its URL; stops it (and its children) at the end."""
    command = shutil.which("clientsim-app", path=str(Path(sys.executable).parent))
    assert command, "clientsim-app is not installed (pip install -e '.[viz]')"
    port = free_port()
    with tempfile.TemporaryDirectory() as cwd, open(Path(cwd) / "server.log", "w+") as log:
        server = subprocess.Popen(
            [command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/"
            try:
                wait_for_page(url, server)
            except (RuntimeError, TimeoutError) as error:
                log.seek(0)
                raise AssertionError(f"{error}\n{log.read()[-3000:]}") from None
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=15)
