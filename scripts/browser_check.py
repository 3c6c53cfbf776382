#!/usr/bin/env python3
"""Open a minigpt report.html in headless Chromium (Debian's `chromium`) and use it as a reader
would: read the summary table, sort it, switch the plot's metric, pick a prompt in the
generation browser. Prints what it saw as one JSON object; the Rust test
(crates/minigpt-cli/tests/integration/report.rs) holds it to the run folder's files.

    python3 scripts/browser_check.py REPORT.html SCREENSHOT.png [PROMPT_INDEX]

Python's standard library only: Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on fd 3, replies on fd 4, each a JSON text ending in NUL).
Every console error, uncaught exception and request that is not file: or data: is reported.
Exits 3 with the reason when Chromium cannot start.
"""
import base64
import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

report = pathlib.Path(sys.argv[1]).resolve()
shot = pathlib.Path(sys.argv[2])
prompt_index = int(sys.argv[3]) if len(sys.argv) > 3 else 1
browser = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
if not os.path.exists(browser):
    print(f"chromium not found at {browser}: apt-get install chromium", file=sys.stderr)
    sys.exit(3)

profile = tempfile.mkdtemp(prefix="minigpt-chromium-")
to_child_r, to_child_w = os.pipe()
from_child_r, from_child_w = os.pipe()


def fds():
    # The child's fd 3 reads our commands, fd 4 writes its replies. The pipe ends are first
    # copied to fds >= 10, so that one already at 3 or 4 is not overwritten before it is copied.
    r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
    w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
    os.dup2(r, 3)
    os.dup2(w, 4)


proc = subprocess.Popen(
    [browser, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
     "--disable-quic", "--no-first-run", "--disable-background-networking",
     "--disable-component-update", "--disable-sync", "--disable-extensions",
     f"--user-data-dir={profile}", "--window-size=1400,1000", "about:blank"],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    preexec_fn=fds, close_fds=False)
os.close(to_child_r)
os.close(from_child_w)
out = os.fdopen(to_child_w, "wb", buffering=0)
inp = os.fdopen(from_child_r, "rb", buffering=0)

buf = b""
events = []
next_id = 0


def read_message(deadline):
    global buf
    while b"\0" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("no reply from chromium")
        chunk = inp.read(65536)
        if not chunk:
            err = proc.stderr.read().decode(errors="replace")[-2000:]
            print(f"chromium exited ({proc.poll()}): {err}", file=sys.stderr)
            sys.exit(3)
        buf += chunk
    msg, buf = buf.split(b"\0", 1)
    return json.loads(msg)


def send(method, params=None, session=None, timeout=30):
    global next_id
    next_id += 1
    msg = {"id": next_id, "method": method, "params": params or {}}
    if session:
        msg["sessionId"] = session
    out.write(json.dumps(msg).encode() + b"\0")
    deadline = time.monotonic() + timeout
    while True:
        m = read_message(deadline)
        if m.get("id") == next_id:
            if "error" in m:
                raise RuntimeError(f"{method}: {m['error']}")
            return m.get("result", {})
        events.append(m)


def wait_event(name, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        for i, e in enumerate(events):
            if e.get("method") == name:
                return events.pop(i)
        events.append(read_message(deadline))


target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
for domain in ("Page", "Runtime", "Log", "Network"):
    send(f"{domain}.enable", session=session)
send("Emulation.setDeviceMetricsOverride",
     {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
t0 = time.monotonic()
send("Page.navigate", {"url": report.as_uri()}, session=session)
wait_event("Page.loadEventFired")


def js(expr):
    r = send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
    if "exceptionDetails" in r:
        raise RuntimeError(f"{expr[:80]}: {r['exceptionDetails']}")
    return r["result"].get("value")


deadline = time.monotonic() + 20
while js("document.body && document.body.dataset.ready || null") is None:
    if time.monotonic() > deadline:
        break
    time.sleep(0.02)
seen = {"load_to_ready_wall_ms": round((time.monotonic() - t0) * 1000)}
seen["ready_ms"] = float(js("document.body.dataset.ready || 'NaN'"))
seen["summary_rows"] = js("document.querySelectorAll('#summary tbody tr').length")
seen["summary_columns"] = js("[...document.querySelectorAll('#summary thead th')].map(t => t.textContent)")
seen["header_titles"] = js("[...document.querySelectorAll('#summary thead th')].map(t => t.title)")
# Sort by the last column twice (ascending, then descending) and read it back.
seen["sorted"] = js("""(() => {
  const last = () => [...document.querySelectorAll('#summary thead th')].pop();
  const col = () => [...document.querySelectorAll('#summary tbody tr')].map(r => r.lastElementChild.firstChild ? r.lastElementChild.firstChild.textContent : '');
  last().click(); const up = col();
  last().click(); const down = col();
  return {up, down};
})()""")
seen["metrics"] = js("[...document.querySelectorAll('#metric option')].map(o => o.value)")
seen["plot_before"] = js("document.querySelector('#plot svg text') && document.querySelector('#plot svg text').textContent")
seen["plot_after"] = js("""(() => {
  const s = document.querySelector('#metric');
  s.selectedIndex = s.options.length - 1;
  s.dispatchEvent(new Event('change'));
  const t = document.querySelector('#plot svg text');
  return t && t.textContent;
})()""")
seen["compare_rows"] = js("document.querySelectorAll('#compare tr').length")
seen["bits_per_byte_rows"] = js("document.querySelectorAll('#bpb tr').length")
seen["browser"] = js(f"""(() => {{
  const s = document.querySelector('#prompt');
  s.selectedIndex = {prompt_index};
  s.dispatchEvent(new Event('change'));
  const cards = [...document.querySelectorAll('#cards .card')];
  return {{
    prompt: s.value,
    prompt_text: document.querySelector('#prompt-text').textContent,
    cards: cards.length,
    human_cards: document.querySelectorAll('#cards .card.human').length,
    shaded_tokens: document.querySelectorAll('#cards .t[style*="background"]').length,
    token_title: (document.querySelector('#cards .t') || {{}}).title || null,
    loop_tokens: document.querySelectorAll('#cards .t.loop').length,
    count: document.querySelector('#count').textContent,
    texts: cards.map(c => c.querySelector('.text').textContent),
    titles: cards.map(c => c.querySelector('h3').textContent),
  }};
}})()""")
seen["paged"] = js("""(() => {
  document.querySelector('#next').click();
  return document.querySelector('#count').textContent;
})()""")
seen["searched"] = js("""(() => {
  const q = document.querySelector('#search');
  q.value = 'zzzz-no-such-text';
  q.dispatchEvent(new Event('input'));
  const n = document.querySelectorAll('#cards .card').length;
  q.value = '';
  q.dispatchEvent(new Event('input'));
  return n;
})()""")
seen["pwned"] = js("document.body.dataset.pwned || document.title === 'pwned' || null")
# The screenshot shows the plot and the first texts (scrolled to the plots, on page 1).
js("""(() => {
  const s = document.querySelector('#metric');
  const want = [...s.options].findIndex(o => o.value === 'mean_mean_logprob');
  if (want >= 0) { s.selectedIndex = want; s.dispatchEvent(new Event('change')); }
  document.querySelector('#prev').click();
  document.querySelector('#plots-section').scrollIntoView();
  return 0;
})()""")
png = send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
shot.write_bytes(base64.b64decode(png))
seen["screenshot"] = str(shot)

# Drain what arrived, then sort out errors and requests.
try:
    send("Runtime.evaluate", {"expression": "1"}, session=session, timeout=5)
except Exception:
    pass
errors, requests = [], []
for e in events:
    m, p = e.get("method"), e.get("params", {})
    if m == "Runtime.exceptionThrown":
        errors.append(p["exceptionDetails"].get("text", "exception"))
    elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
    elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
        errors.append(p["entry"].get("text", ""))
    elif m == "Network.requestWillBeSent":
        url = p["request"]["url"]
        if not url.startswith(("file:", "data:")):
            requests.append(url)
seen["console_errors"] = errors
seen["network_requests"] = requests
try:
    send("Browser.close", timeout=5)
except Exception:
    pass
proc.wait(timeout=10)
shutil.rmtree(profile, ignore_errors=True)
print(json.dumps(seen))
