#!/usr/bin/env python3
"""Open a minigpt report.html in headless Chromium (Debian's `chromium`) and use it as a reader
would: read the summary table, sort it, switch the plot's metric, pick a prompt in the
generation browser. Prints what it saw as one JSON object; the Rust test
(crates/minigpt-cli/tests/integration/report.rs) holds it to the run folder's files.

    python3 scripts/browser_check.py REPORT.html SCREENSHOT.png [PROMPT_INDEX]

Python's standard library only: Chromium is driven over the DevTools protocol on a pipe
(scripts/cdp.py).
Every console error, uncaught exception and request that is not file: or data: is reported.
Exits 3 with the reason when Chromium cannot start.
"""
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from cdp import Browser  # noqa: E402

report = pathlib.Path(sys.argv[1]).resolve()
shot = pathlib.Path(sys.argv[2])
prompt_index = int(sys.argv[3]) if len(sys.argv) > 3 else 1
b = Browser()
js = b.js
t0 = time.monotonic()
b.navigate(report.as_uri())

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
b.screenshot(shot)
seen["screenshot"] = str(shot)
seen["console_errors"], seen["network_requests"] = b.problems()
b.close()
print(json.dumps(seen))
