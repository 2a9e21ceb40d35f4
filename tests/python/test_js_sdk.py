"""Runs the AWS SDK for JavaScript v3 test (tests/js/subscribe.test.mjs, `node --test`)
against the session's server.

The JS SDK talks HTTP/2 (h2c prior knowledge on http://) for every Kinesis call, so this is
also the suite's HTTP/2 check.  Its dependencies come from tests/js/package-lock.json
(`npm ci --prefix tests/js`, which scripts/test.sh runs).  Without node the test is skipped,
except under CI, where it has to run.
"""

import os
import shutil
import subprocess

import pytest

from conftest import REPO

JS_DIR = REPO / "tests" / "js"
TIMEOUT_S = 120


def test_js_sdk_subscribe_to_shard(endpoint):
    run_js_test(endpoint)


def run_js_test(endpoint: str, extra_env: dict | None = None) -> None:
    """Runs subscribe.test.mjs against `endpoint` (http:// for h2c, https:// for h2 by ALPN)."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed, and CI requires the JS SDK test to run", pytrace=False)
        pytest.skip("node is not installed")
    assert (JS_DIR / "node_modules" / "@aws-sdk" / "client-kinesis").is_dir(), (
        "the JS SDK is not installed; run: npm ci --prefix tests/js")
    env = dict(os.environ)
    env["SLUICE_ENDPOINT"] = endpoint
    env.update(extra_env or {})
    try:
        proc = subprocess.run([node, "--test", str(JS_DIR / "subscribe.test.mjs")], cwd=str(REPO), env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"node --test did not finish within {TIMEOUT_S}s\nstdout:\n{out}\nstderr:\n{err}", pytrace=False)
    if proc.returncode != 0:
        print(proc.stdout)
        print(proc.stderr)
    assert proc.returncode == 0, (
        f"node --test exited {proc.returncode}\nstdout:\n{proc.stdout[-8000:]}\nstderr:\n{proc.stderr[-4000:]}")
