#!/usr/bin/env python3
"""Use `minigpt serve`'s playground in headless Chromium (Debian's `chromium`) as a person
would: type a prompt, pick the strategies of the columns (a preset, a preset edited as TOML,
a chain as JSON, and one that is not valid JSON), run them side by side, click a token for its
alternatives, then start a long run and Stop it. Prints what it saw as one JSON object; the
Rust test (crates/minigpt-cli/tests/integration/serve.rs) holds it to the server's own answers.

    python3 scripts/playground_check.py http://127.0.0.1:PORT SCREENSHOT.png

Python's standard library only (scripts/cdp.py). Every console error, uncaught exception and
request that leaves the server is reported. Exits 3 when Chromium cannot start.
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cdp import Browser  # noqa: E402

base = sys.argv[1].rstrip("/")
shot = sys.argv[2]
PROMPT = "ROMEO:\n"
JSON_CHAIN = '{"processors": [{"name": "top_k", "k": 5}], "selector": {"name": "multinomial"}}'

b = Browser(width=1600, height=1000)
b.navigate(base + "/")
seen = {"ready": b.wait_for("document.body.dataset.ready || null")}
seen["presets"] = b.js("[...document.querySelector('.column .preset').options].map(o => o.value)")
seen["initial_columns"] = b.js("document.querySelectorAll('#columns .column').length")

# Type the prompt and the settings.
b.js("(() => { const p = document.querySelector('#prompt'); p.focus(); p.select(); return 0; })()")
b.send("Input.insertText", {"text": PROMPT})
b.js("""(() => {
  document.querySelector('#max-tokens').value = '40';
  document.querySelector('#seed').value = '7';
  return 0;
})()""")
# Column 2: the greedy preset. Columns 3 and 4: a JSON chain, and one that is not JSON.
seen["columns_set"] = b.js(f"""(() => {{
  const set = (col, text) => {{
    const c = col.querySelector('.chain');
    c.value = text;
    c.dispatchEvent(new Event('input'));
  }};
  const cols = () => [...document.querySelectorAll('#columns .column')];
  const s = cols()[1].querySelector('.preset');
  s.value = 'greedy';
  s.dispatchEvent(new Event('change'));
  document.querySelector('#add').click();
  set(cols()[2], {json.dumps(JSON_CHAIN)});
  document.querySelector('#add').click();
  set(cols()[3], '{{"processors": [');
  return cols().map(c => c.querySelector('.preset').value);
}})()""")
seen["add_disabled_at_4"] = b.js("document.querySelector('#add').disabled")
b.js("document.querySelector('#run').click(), 0")
seen["finished"] = b.wait_for("""(() => {
  const cols = [...document.querySelectorAll('#columns .column')];
  return cols.every(c => ['done', 'error'].includes(c.dataset.state)) || null;
})()""", timeout=60)
seen["prompt"] = b.js("document.querySelector('#prompt').value")
seen["columns"] = b.js("""[...document.querySelectorAll('#columns .column')].map(c => ({
  preset: c.querySelector('.preset').value,
  chain: c.querySelector('.chain').value,
  state: c.dataset.state,
  tokens: c.querySelectorAll('.out .t').length,
  shaded: c.querySelectorAll('.out .t[style*="background"]').length,
  prompt: (c.querySelector('.out .p') || {}).textContent || null,
  text: [...c.querySelectorAll('.out .t')].map(t => t.textContent).join(''),
  titles: [...c.querySelectorAll('.out .t')].slice(0, 3).map(t => t.title),
  info: c.querySelector('.info').textContent,
  error: c.querySelector('.info').classList.contains('error'),
}))""")
# Click the third token of the first column.
seen["detail"] = b.js("""(() => {
  const t = document.querySelectorAll('#columns .column')[0].querySelectorAll('.out .t')[2];
  t.click();
  const d = document.querySelector('#detail');
  return {
    hidden: d.hidden,
    title: document.querySelector('#detail-title').textContent,
    meta: document.querySelector('#detail-meta').textContent,
    rows: [...document.querySelectorAll('#alts tbody tr')].map(r =>
      ({cells: [...r.cells].map(c => c.textContent), chosen: r.classList.contains('chosen')})),
    picked: document.querySelectorAll('.t.picked').length,
  };
})()""")
b.screenshot(shot)
seen["screenshot"] = shot
# Stop: a long run (past the model's positions every step recomputes its window), stopped
# once the first column has written a few tokens.
b.js("""(() => {
  document.querySelector('#max-tokens').value = '4000';
  document.querySelector('#run').click();
  return 0;
})()""")
seen["before_stop"] = b.wait_for(
    "document.querySelectorAll('#columns .column')[0].querySelectorAll('.out .t').length >= 5 || null")
b.js("document.querySelector('#stop').click(), 0")
seen["stopped"] = b.wait_for("""(() => {
  const cols = [...document.querySelectorAll('#columns .column')];
  if (!cols.every(c => ['done', 'error', 'stopped'].includes(c.dataset.state))) return null;
  return cols.map(c => ({state: c.dataset.state, tokens: c.querySelectorAll('.out .t').length,
                         info: c.querySelector('.info').textContent}));
})()""", timeout=30)
seen["stop_disabled"] = b.js("document.querySelector('#stop').disabled")
seen["console_errors"], seen["network_requests"] = b.problems((base + "/", "data:"))
b.close()
print(json.dumps(seen))
