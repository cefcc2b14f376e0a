"""A real OpenAI-compatible server for end-to-end tests: llama-cpp-python's, on loopback,
serving the SmolLM2 model that plait-local bundles."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO

import httpx
import plait_local
import pytest

STARTUP_TIMEOUT = 120.0  # seconds; the model itself loads in about one


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free loopback port; yield its base URL
    (``http://127.0.0.1:<port>/v1``); stop it after the session."""
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(plait_local.bundled_model_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1",  # see docs/plugins/local.md
    ]
    # The log goes to a file, not a pipe, so a chatty server can never block on it.
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            _wait_until_ready(server, base_url, log)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_ready(server: subprocess.Popen[bytes], base_url: str, log: IO[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with code {server.returncode}:\n{_read(log)}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_TIMEOUT:g}s:\n{_read(log)}")


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()[-4000:]
