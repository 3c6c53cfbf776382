"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe, for the
browser checks (scripts/browser_check.py, scripts/playground_check.py).

Python's standard library only: --remote-debugging-pipe takes commands on fd 3 and writes
replies on fd 4, each a JSON text ending in NUL. `Browser.problems()` sorts what the page did
into console errors, uncaught exceptions and network requests. Exits 3 with the reason when
Chromium cannot start.
"""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, width=1400, height=1000):
        browser = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
        if not os.path.exists(browser):
            print(f"chromium not found at {browser}: apt-get install chromium", file=sys.stderr)
            sys.exit(3)
        self.profile = tempfile.mkdtemp(prefix="minigpt-chromium-")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()

        def fds():
            # The child's fd 3 reads our commands, fd 4 writes its replies. The pipe ends are
            # first copied to fds >= 10, so that one already at 3 or 4 is not overwritten
            # before it is copied.
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [browser, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self.out = os.fdopen(to_child_w, "wb", buffering=0)
        self.inp = os.fdopen(from_child_r, "rb", buffering=0)
        self.buf = b""
        self.events = []
        self.next_id = 0
        self.session = None
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = self.inp.read(65536)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:]
                print(f"chromium exited ({self.proc.poll()}): {err}", file=sys.stderr)
                sys.exit(3)
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, timeout=30, browser_level=False):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not browser_level:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    return self.events.pop(i)
            self.events.append(self.read_message(deadline))

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def js(self, expr):
        """Evaluates `expr` in the page (awaiting a promise) and returns its value."""
        r = self.send("Runtime.evaluate",
                      {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr, timeout=20):
        """Polls `expr` until it is truthy; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.js(expr)
            if v or time.monotonic() > deadline:
                return v
            time.sleep(0.02)

    def screenshot(self, path):
        png = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def problems(self, allowed_url_prefixes=("file:", "data:")):
        """(errors, requests): console errors and uncaught exceptions, and every request whose
        URL does not start with one of `allowed_url_prefixes`."""
        try:
            self.send("Runtime.evaluate", {"expression": "1"}, timeout=5)
        except Exception:
            pass
        errors, requests = [], []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text", "exception"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                       for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(p["entry"].get("text", ""))
            elif m == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith(tuple(allowed_url_prefixes)):
                    requests.append(url)
        return errors, requests

    def close(self):
        try:
            self.send("Browser.close", timeout=5, browser_level=True)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
