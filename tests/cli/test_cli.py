"""The command line: ``validate`` exit codes and messages, ``serve`` as a real process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest
import yaml

from modelroute.testing.fake_openai import FakeOpenAI
from tests.support import APP_KEY, PROVIDER_KEY, quickstart

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "zebra-pineapple secret prompt"
EXAMPLE = ROOT / "examples" / "quickstart" / "policy.yaml"


def modelroute(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelroute", *args], capture_output=True, text=True, timeout=60)


def test_validate_accepts_the_quickstart_example() -> None:
    result = modelroute("validate", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok (policy quickstart" in result.stdout


def test_validate_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    doc = quickstart("http://127.0.0.1:1/v1", default="nope", fallbacks={"gpt-4o": ["gpt-4o-mini"], "gpt-4o-mini": ["gpt-4o"]})
    doc["spec"]["routes"][2]["when"] = "request.input_tokens >"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = modelroute("validate", str(EXAMPLE), str(path))
    assert result.returncode == 1
    assert "spec.default: unknown model 'nope'" in result.stdout
    assert "spec.routes[2].when: CEL does not compile" in result.stdout
    assert "fallback cycle" in result.stdout
    assert "ok (policy quickstart" in result.stdout


def test_validate_reports_yaml_errors_with_a_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [unclosed\n")
    result = modelroute("validate", str(path))
    assert result.returncode == 1 and "line 2" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}")
            try:
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("serve did not become ready")


@pytest.mark.slow
async def test_serve_routes_real_sdk_traffic_and_reloads_its_file(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    path = tmp_path / "policy.yaml"
    doc = quickstart(fake_openai.base_url)
    path.write_text(yaml.safe_dump(doc))
    port = free_port()
    env = {**os.environ, "TEST_PROVIDER_KEY": PROVIDER_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "modelroute", "serve", "--policy", str(path), "--port", str(port),
                             "--watch-interval", "0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc)
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=APP_KEY, max_retries=0) as client:
            raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
            assert raw.headers["x-modelroute-model"] == "gpt-4o-mini"
            doc["spec"]["default"] = "gpt-4o"
            path.write_text(yaml.safe_dump(doc))
            for _ in range(100):
                raw = await client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
                if raw.headers["x-modelroute-model"] == "gpt-4o":
                    break
                await asyncio.sleep(0.05)
            assert raw.headers["x-modelroute-model"] == "gpt-4o"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    log = err.decode()
    assert "applied" in log
    assert PROVIDER_KEY not in log and APP_KEY not in log and PROMPT not in log


def test_serve_refuses_an_invalid_policy(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(quickstart("http://127.0.0.1:1/v1", default="nope")))
    result = modelroute("serve", "--policy", str(path), "--port", str(free_port()))
    assert result.returncode == 2
    assert "spec.default: unknown model 'nope'" in result.stderr
