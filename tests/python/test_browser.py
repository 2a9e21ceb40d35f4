"""CORS, from a real web page: the AWS SDK for JavaScript v3 in headless Chromium.

tests/js/browser/clicks.mjs is bundled for the browser with esbuild (a devDependency in
tests/js, installed by `npm ci --prefix tests/js`) and served with tests/js/browser/index.html
by a static HTTP server on 127.0.0.1:<port A>, while sluice listens on 127.0.0.1:<port B>: every
Kinesis call from the page is cross-origin, and as the SDK sends x-amz-* headers, the browser
sends a CORS preflight before it. The page turns click events into records, writes them with
PutRecords and PutRecord, reads them back with GetShardIterator + GetRecords, then calls
DescribeStream on a missing stream, and writes the outcome as JSON into the DOM and POSTs it
to its own server, where the test waits for it (`--dump-dom` with `--virtual-time-budget` is
not used: it sometimes dumps before the page's fetches end). Chromium's net log
(--log-net-log) shows the preflights it sent to sluice and what sluice answered.

Raw-HTTP tests check the headers themselves, on the session's server (any origin, the default)
and on a server of this module's started with SLUICE_CORS_ALLOWED_ORIGINS.

Chromium comes from Debian's `chromium` package (scripts/test.sh installs it); without it these
tests fail rather than skip.
"""

from __future__ import annotations

import collections
import functools
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from conftest import (
    REPO,
    RawHttp,
    _start_server,
    _stop,
    make_client,
    read_shard,
    unique_name,
    wait_active,
)

JS_DIR = REPO / "tests" / "js"
PAGE_DIR = JS_DIR / "browser"
CHROMIUM_TIMEOUT_S = 90
# The headers the JS SDK v3 asks for in its preflight (as Chromium sends them).
SDK_REQUEST_HEADERS = ("amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,"
                       "x-amz-content-sha256,x-amz-date,x-amz-target,x-amz-user-agent")
ALLOWED = "http://localhost:3000"
DISALLOWED = "http://evil.example"


# --------------------------------------------------------------------------------------
# The page, its server, and the browser
# --------------------------------------------------------------------------------------

def chromium_binary() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed, and the browser (CORS) tests need it: run "
                    "scripts/test.sh, which installs it, or `apt-get install chromium`", pytrace=False)
    return path


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the page's files; a POST to /result?run=ID is the page's report."""

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if u.path != "/result":
            self.send_error(404)
            return
        run = urllib.parse.parse_qs(u.query).get("run", [""])[0]
        self.server.reports.put((run, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Site:
    """The page's static server: http://127.0.0.1:<port>/index.html."""

    def __init__(self, root):
        self.root = root
        handler = functools.partial(_PageHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.reports = queue.Queue()
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, name="page-server", daemon=True).start()

    def url(self, endpoint: str, stream: str, host: str = "127.0.0.1") -> tuple[str, str]:
        """The page's URL for one run, and the run's id (its report carries it)."""
        run = uuid.uuid4().hex
        query = urllib.parse.urlencode({"endpoint": endpoint, "stream": stream,
                                        "missing": unique_name("no-such-stream"),
                                        "report": f"/result?run={run}"})
        return f"http://{host}:{self.port}/index.html?{query}", run

    def report(self, run: str, timeout: float) -> bytes | None:
        """The page's report for run `run`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got, body = self.httpd.reports.get(timeout=min(left, 0.2))
            except queue.Empty:
                return None
            if got == run:
                return body
        return None

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The page's server, on its own origin (its files come from the `page` fixture)."""
    s = Site(tmp_path_factory.mktemp("browser-page"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def page(site) -> Site:
    """The page bundled for the browser (esbuild, IIFE) in the site's directory."""
    chromium_binary()
    esbuild = JS_DIR / "node_modules" / ".bin" / "esbuild"
    assert esbuild.exists(), "esbuild is not installed; run: npm ci --prefix tests/js"
    proc = subprocess.run([str(esbuild), str(PAGE_DIR / "clicks.mjs"), "--bundle", "--platform=browser",
                           "--format=iife", f"--outfile={site.root / 'clicks.js'}", "--log-level=warning"],
                          cwd=str(JS_DIR), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"esbuild failed:\n{proc.stdout}\n{proc.stderr}"
    shutil.copy(PAGE_DIR / "index.html", site.root / "index.html")
    return site


class PageRun(collections.namedtuple("PageRun", "result netlog stderr")):
    def preflights(self, endpoint: str) -> list[dict]:
        """What the browser recorded of each CORS preflight it sent to `endpoint` (the allowed
        methods and headers it read from the answer); cached reuses not counted."""
        names = {v: k for k, v in self.netlog["constants"]["logEventTypes"].items()}
        by_source = collections.defaultdict(list)
        for e in self.netlog["events"]:
            by_source[e["source"]["id"]].append((names.get(e["type"]), e.get("params") or {}))
        out = []
        for events in by_source.values():
            urls = [p["url"] for t, p in events if t == "CORS_REQUEST" and "url" in p]
            if not urls or not urls[0].startswith(endpoint + "/"):
                continue
            sent = any(t == "CORS_PREFLIGHT_URL_REQUEST" for t, _ in events)
            out.extend(p for t, p in events if t == "CORS_PREFLIGHT_RESULT" and sent)
        return out

    def describe(self) -> str:
        noise = ("dbus", "Fontconfig")
        err = "\n".join(line for line in self.stderr.splitlines() if not any(n in line for n in noise))
        return f"page result: {self.result}\nchromium stderr:\n{err[-4000:]}"


def run_page(site: Site, url_and_run: tuple[str, str], tmp_path) -> PageRun:
    """Opens the page in headless Chromium, waits for its report, closes the browser."""
    url, run_id = url_and_run
    netlog_path = tmp_path / "netlog.json"
    stderr_path = tmp_path / "chromium.stderr"
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
           "--disable-background-networking", "--disable-component-update",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--log-net-log={netlog_path}", url]
    with open(stderr_path, "wb") as err:
        # Its own process group, so that the browser and its helper processes end together.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
    try:
        body = None
        deadline = time.monotonic() + CHROMIUM_TIMEOUT_S
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            body = site.report(run_id, 0.5)
        exited = proc.poll()
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # any helper process the browser left
        except ProcessLookupError:
            pass
    text = netlog_path.read_text(errors="replace") if netlog_path.exists() else ""
    try:
        netlog = json.loads(text)
    except ValueError:
        # A net log cut short lacks its closing brackets.
        try:
            netlog = json.loads(text.rstrip().rstrip(",") + "]}")
        except ValueError:
            netlog = {"constants": {"logEventTypes": {}}, "events": []}
    run = PageRun(json.loads(body) if body else None, netlog, stderr_path.read_text(errors="replace"))
    if body is None:
        how = f"exited with {exited}" if exited is not None else "kept running"
        pytest.fail(f"the page sent no result within {CHROMIUM_TIMEOUT_S}s (chromium {how})\n" + run.describe(),
                    pytrace=False)
    return run


def assert_clicks_round_trip(run: PageRun) -> None:
    """Every click put came back, in order, with its data and sequence number."""
    r = run.result
    assert "error" not in r, run.describe()
    clicks = r["clicks"]
    assert len(clicks) == 6 and [c["seq"] for c in clicks] == list(range(6)), run.describe()
    assert [c["target"] for c in clicks] == ["buy", "details", "cart"] * 2
    assert len(r["put"]) == 6
    assert [x["data"] for x in r["read"]] == clicks, run.describe()
    assert [x["sequenceNumber"] for x in r["read"]] == [p["sequenceNumber"] for p in r["put"]]
    seqs = [int(p["sequenceNumber"]) for p in r["put"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert all(x["partitionKey"] == "session-1" and x["arrival"] for x in r["read"])
    # $metadata.requestId comes from x-amzn-RequestId: the browser shows it to the page only
    # because the answer exposes it (Access-Control-Expose-Headers).
    assert r["requestIds"] and all(r["requestIds"]), run.describe()


def assert_error_visible(run: PageRun) -> None:
    """The failing call surfaced the AWS error: the error answer carried the CORS headers."""
    missing = run.result["missing"]
    assert missing["name"] == "ResourceNotFoundException", run.describe()
    assert missing["status"] == 400
    assert "not found" in missing["message"]
    assert missing["requestId"], run.describe()


# --------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------

def test_browser_puts_and_reads_click_events(page, endpoint, kinesis, new_stream, tmp_path):
    stream = new_stream("browser")
    run = run_page(page, page.url(endpoint, stream), tmp_path)
    assert run.result["origin"] == page.origin and page.origin != endpoint
    assert_clicks_round_trip(run)
    assert_error_visible(run)
    # The browser preflighted its calls to sluice and took the answer.
    preflights = run.preflights(endpoint)
    assert preflights, "no CORS preflight to sluice in Chromium's net log\n" + run.describe()
    allowed = {h.strip().lower() for h in preflights[0]["access-control-allow-headers"].split(",")}
    assert {"x-amz-target", "x-amz-date", "authorization", "content-type", "amz-sdk-invocation-id"} <= allowed
    assert "POST" in preflights[0]["access-control-allow-methods"]
    # What the page wrote is in the stream, for any other client.
    shard = run.result["put"][0]["shardId"]
    records = read_shard(kinesis, stream, shard)
    assert [json.loads(rec["Data"]) for rec in records] == run.result["clicks"]


@pytest.fixture(scope="module")
def strict_server(aws_env, site, tmp_path_factory):
    """A server allowing two origins: http://localhost:3000 and the page's (127.0.0.1)."""
    srv = _start_server(tmp_path_factory.mktemp("sluice-cors-data"), tmp_path_factory.mktemp("sluice-cors-logs"),
                        {"SLUICE_CORS_ALLOWED_ORIGINS": f"{ALLOWED}, {site.origin}"})
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def strict_stream(strict_server):
    client = make_client(strict_server.endpoint)
    name = unique_name("browser-strict")
    client.create_stream(StreamName=name, ShardCount=1)
    wait_active(client, name)
    return name


def test_browser_with_its_origin_allowed(page, strict_server, strict_stream, tmp_path):
    run = run_page(page, page.url(strict_server.endpoint, strict_stream), tmp_path)
    assert_clicks_round_trip(run)
    assert_error_visible(run)
    assert run.preflights(strict_server.endpoint), run.describe()


def test_browser_from_an_origin_not_allowed_is_refused(page, strict_server, tmp_path):
    """The same page from http://localhost:<port A>, another origin: the preflight is refused,
    and the browser gives the SDK a network error and never sends the call."""
    client = make_client(strict_server.endpoint)
    stream = unique_name("browser-refused")
    client.create_stream(StreamName=stream, ShardCount=1)
    wait_active(client, stream)
    run = run_page(page, page.url(strict_server.endpoint, stream, host="localhost"), tmp_path)
    assert run.result["origin"] == f"http://localhost:{page.port}"
    assert run.result["error"]["name"] == "TypeError", run.describe()
    assert run.result["missing"]["name"] == "TypeError", run.describe()
    assert run.result["missing"]["status"] is None
    shard = client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    assert read_shard(client, stream, shard) == []


# --------------------------------------------------------------------------------------
# The headers, raw
# --------------------------------------------------------------------------------------

def preflight(raw: RawHttp, origin: str | None, request_headers: str = SDK_REQUEST_HEADERS):
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": request_headers}
    if origin is not None:
        headers["Origin"] = origin
    return raw.request(b"", headers, sign=False, method="OPTIONS")


def cors_headers(resp) -> dict:
    return {k: v for k, v in resp.headers.items() if k.startswith("access-control-")}


def describe_missing(raw: RawHttp, origin: str | None):
    extra = {"Origin": origin} if origin else {}
    return raw.call("DescribeStreamSummary", json.dumps({"StreamName": unique_name("missing")}).encode(),
                    extra_headers=extra)


def list_streams(raw: RawHttp, origin: str | None):
    extra = {"Origin": origin} if origin else {}
    return raw.call("ListStreams", b"{}", extra_headers=extra)


def test_preflight_any_origin(raw):
    resp = preflight(raw, "http://app.example:8080", SDK_REQUEST_HEADERS + ",cookie")
    assert resp.status == 200, resp
    h = resp.headers
    assert h["access-control-allow-origin"] == "*"
    assert "POST" in h["access-control-allow-methods"]
    allowed = [x.strip() for x in h["access-control-allow-headers"].split(",")]
    assert allowed == SDK_REQUEST_HEADERS.split(","), "every SDK header allowed, cookie not"
    assert int(h["access-control-max-age"]) > 0


def test_answers_and_errors_carry_allow_origin(raw):
    ok = list_streams(raw, "http://app.example:8080")
    assert ok.status == 200
    assert ok.headers["access-control-allow-origin"] == "*"
    err = describe_missing(raw, "http://app.example:8080")
    assert err.status == 400 and err.error_type() == "ResourceNotFoundException"
    assert err.headers["access-control-allow-origin"] == "*"
    exposed = [x.strip().lower() for x in err.headers["access-control-expose-headers"].split(",")]
    assert "x-amzn-requestid" in exposed
    assert err.headers.get("x-amzn-requestid")


def test_no_cors_headers_without_origin(raw, strict_server):
    for r in (raw, RawHttp(strict_server.endpoint)):
        for resp in (list_streams(r, None), describe_missing(r, None)):
            assert cors_headers(resp) == {}, resp.headers
            assert "origin" not in resp.headers.get("vary", "").lower()


def test_configured_origins(strict_server):
    raw = RawHttp(strict_server.endpoint)
    # Not on the list: preflight refused, nothing allowed.
    refused = preflight(raw, DISALLOWED)
    assert refused.status == 403
    assert "access-control-allow-origin" not in refused.headers
    call = list_streams(raw, DISALLOWED)
    assert call.status == 200 and cors_headers(call) == {}
    # On the list: echoed, with Vary: Origin (the answer depends on it).
    ok = preflight(raw, ALLOWED)
    assert ok.status == 200
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert "origin" in ok.headers["vary"].lower()
    assert "x-amz-target" in ok.headers["access-control-allow-headers"]
    for resp in (list_streams(raw, ALLOWED), describe_missing(raw, ALLOWED)):
        assert resp.headers["access-control-allow-origin"] == ALLOWED, resp.headers
        assert "origin" in resp.headers["vary"].lower()
        assert "x-amzn-requestid" in resp.headers["access-control-expose-headers"].lower()
