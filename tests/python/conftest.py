"""Session fixtures: a mock OpenAI upstream, the bifrost-http gateway in front of
it, and an official `openai` SDK client pointed at the gateway.

Binaries come from ``$BIFROST_BIN_DIR`` (default ``<repo>/target/debug``); build
them first with ``cargo build --workspace``. Both processes are always killed at
the end of the session, and their logs are kept in pytest's temp directory (the
tail is shown when start-up fails).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("BIFROST_BIN_DIR") or REPO / "target" / "debug")

STARTUP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 20.0
MOCK_BANNER = "mock-upstream listening on "

# Never route loopback traffic through a proxy from the environment.
_no_proxy = ",".join(x for x in (os.environ.get("NO_PROXY"), "127.0.0.1", "localhost") if x)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = _no_proxy


def _binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} not found; build it with `cargo build --workspace` "
            "or set BIFROST_BIN_DIR",
            pytrace=False,
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="session")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Starts `mock-upstream --port 0` and yields its base URL (no `/v1`)."""
    exe = _binary("mock-upstream")
    log = tmp_path_factory.mktemp("mock") / "mock-upstream.stderr.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [str(exe), "--port", "0", "--host", "127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                pytest.fail(
                    f"mock-upstream did not announce its address (exit={proc.poll()}, "
                    f"stdout={line!r}):\n{_tail(log)}",
                    pytrace=False,
                )
            ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.2))
            if ready:
                byte = os.read(proc.stdout.fileno(), 1)
                if not byte:
                    continue
                line += byte
        text = line.decode().strip()
        assert text.startswith(MOCK_BANNER), f"unexpected mock-upstream banner: {text!r}"
        url = text[len(MOCK_BANNER):].rstrip("/")
        yield url
    finally:
        _stop(proc)


def _gateway_config(mock: str) -> dict:
    return {
        "client": {"drop_excess_requests": False},
        "providers": {
            "openai": {
                "keys": [{"value": "sk-test-a", "models": [], "weight": 1}],
                "network_config": {
                    "base_url": mock,
                    "max_retries": 2,
                    "retry_backoff_initial": 10,
                    "retry_backoff_max": 50,
                },
            }
        },
        "plugins": [
            {
                "name": "mocker",
                "enabled": True,
                "config": {
                    "enabled": True,
                    "default_behavior": "passthrough",
                    "rules": [
                        {
                            "name": "demo",
                            "enabled": True,
                            "priority": 1,
                            "probability": 1,
                            "conditions": {"providers": ["mock"]},
                            "responses": [
                                {
                                    "type": "success",
                                    "weight": 1,
                                    "content": {"message": "{{input}}"},
                                }
                            ],
                        }
                    ],
                },
            }
        ],
    }


@pytest.fixture(scope="session")
def gateway_url(mock_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Starts bifrost-http against the mock and yields its base URL (no `/v1`)."""
    yield from _run_gateway(_gateway_config(mock_url), tmp_path_factory)


def _surfaces_config(mock: str) -> dict:
    """The demo config plus `anthropic` and `gemini` providers, all at the mock, so each
    drop-in SDK route can reach a same-dialect and an other-dialect upstream."""
    config = _gateway_config(mock)
    network = config["providers"]["openai"]["network_config"]
    config["providers"]["anthropic"] = {
        "keys": [{"value": "sk-ant-test", "models": [], "weight": 1}],
        "network_config": dict(network),
    }
    config["providers"]["gemini"] = {
        "keys": [{"value": "gm-test", "models": [], "weight": 1}],
        "network_config": dict(network),
    }
    return config


@pytest.fixture(scope="session")
def surfaces_gateway_url(mock_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway for the drop-in SDK routes (`/openai`, `/anthropic`, `/genai`) with the
    `openai`, `anthropic` and `gemini` providers all pointed at the mock."""
    yield from _run_gateway(_surfaces_config(mock_url), tmp_path_factory)


@pytest.fixture(scope="session")
def anthropic_client(surfaces_gateway_url: str):
    """The official Anthropic SDK on the gateway's `/anthropic` route; no client retries."""
    import anthropic

    c = anthropic.Anthropic(
        base_url=f"{surfaces_gateway_url}/anthropic",
        api_key="unused",
        max_retries=0,
        timeout=HTTP_TIMEOUT_S,
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def openai_surface_client(surfaces_gateway_url: str) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK on the gateway's `/openai` route (bare model names go to the
    `openai` provider); no client retries."""
    c = openai.OpenAI(
        base_url=f"{surfaces_gateway_url}/openai",
        api_key="unused",
        max_retries=0,
        timeout=HTTP_TIMEOUT_S,
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def genai_client(surfaces_gateway_url: str):
    """The official google-genai SDK on the gateway's `/genai` route (bare model names go to
    the `gemini` provider; the SDK calls `/genai/v1/models/...`); no client retries."""
    from google import genai
    from google.genai import types

    c = genai.Client(
        api_key="unused",
        http_options=types.HttpOptions(
            base_url=f"{surfaces_gateway_url}/genai",
            timeout=int(HTTP_TIMEOUT_S * 1000),
        ),
    )
    try:
        yield c
    finally:
        c.close()


def _run_gateway(config_dict: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Runs bifrost-http with `config_dict` until the generator is closed; yields its URL."""
    exe = _binary("bifrost-http")
    workdir = tmp_path_factory.mktemp("gateway")
    config = workdir / "config.json"
    config.write_text(json.dumps(config_dict, indent=2))
    port = _free_port()
    out_log, err_log = workdir / "stdout.log", workdir / "stderr.log"
    with out_log.open("wb") as out, err_log.open("wb") as err:
        proc = subprocess.Popen(
            [
                str(exe),
                "-config", str(config),
                "-port", str(port),
                "-host", "127.0.0.1",
                "-log-level", "warn",
            ],
            cwd=workdir,  # anything the gateway writes next to itself stays in the temp dir
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = "no answer"
        with httpx.Client(timeout=2.0) as http:
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"bifrost-http exited with {proc.returncode} before becoming healthy\n"
                        f"--- stdout ---\n{_tail(out_log)}\n--- stderr ---\n{_tail(err_log)}",
                        pytrace=False,
                    )
                try:
                    r = http.get(f"{url}/health")
                    if r.status_code == 200:
                        break
                    last = f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as e:
                    last = repr(e)
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"bifrost-http not healthy on {url} after {STARTUP_TIMEOUT_S}s ({last})\n"
                        f"--- stdout ---\n{_tail(out_log)}\n--- stderr ---\n{_tail(err_log)}",
                        pytrace=False,
                    )
                time.sleep(0.1)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK, talking to the gateway; no client-side retries."""
    c = openai.OpenAI(
        base_url=f"{gateway_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=HTTP_TIMEOUT_S,
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """A plain HTTP client for raw requests and the mock's `/_mock/stats`."""
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as c:
        yield c


@pytest.fixture()
def mock_stats(mock_url: str, http: httpx.Client):
    """Returns a callable that fetches the upstream's request counters."""

    def fetch() -> dict:
        r = http.get(f"{mock_url}/_mock/stats")
        r.raise_for_status()
        return r.json()

    return fetch
