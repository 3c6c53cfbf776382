'use strict';
// The playground: one prompt, 1-4 strategy columns streaming side by side from
// POST /v1/completions (stream, logprobs 10), tokens shaded by probability, a token's top-10
// alternatives and entropy on click. Model text only ever goes through textContent.

const $ = (s) => document.querySelector(s);
const MAX_COLUMNS = 4;
const FIRST = ['top_p_0.9', 'min_p_0.05', 'typical_0.95', 'greedy'];
const state = { presets: [], controller: null };

function note(text) {
  $('#status').textContent = text;
}

async function getJson(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

// Control characters and spaces shown visibly in the alternatives table.
function visible(t) {
  return t.replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/ /g, '␣') || '∅';
}

function fmtP(p) {
  return p >= 0.01 ? p.toFixed(3) : p.toExponential(1);
}

// Less likely tokens are darker.
function shade(p) {
  const a = Math.min(1, Math.max(0, 1 - p)) * 0.6;
  return `rgba(255, 127, 14, ${a.toFixed(3)})`;
}

function columns() {
  return [...document.querySelectorAll('#columns .column')];
}

function layout() {
  const n = columns().length;
  $('#columns').style.setProperty('--n', String(n));
  $('#add').disabled = n >= MAX_COLUMNS;
  for (const c of columns()) c.querySelector('.remove').disabled = n <= 1;
}

function addColumn(name) {
  if (columns().length >= MAX_COLUMNS) return;
  const col = $('#column').content.firstElementChild.cloneNode(true);
  const select = col.querySelector('.preset');
  for (const p of state.presets) {
    const o = document.createElement('option');
    o.value = p.name;
    o.textContent = p.name;
    o.title = p.description;
    select.append(o);
  }
  const custom = document.createElement('option');
  custom.value = '';
  custom.textContent = '(edited)';
  select.append(custom);
  const chain = col.querySelector('.chain');
  const pick = (n) => {
    const p = state.presets.find((x) => x.name === n) || state.presets[0];
    if (!p) return;
    select.value = p.name;
    chain.value = p.toml.trim();
  };
  select.addEventListener('change', () => pick(select.value));
  chain.addEventListener('input', () => { select.value = ''; });
  col.querySelector('.remove').addEventListener('click', () => {
    if (columns().length > 1) { col.remove(); layout(); }
  });
  col.steps = [];
  pick(name);
  $('#columns').append(col);
  layout();
  return col;
}

function fail(col, message) {
  const info = col.querySelector('.info');
  info.textContent = message;
  info.classList.add('error');
  col.dataset.state = 'error';
}

function addToken(col, lp) {
  const k = col.steps.length;
  const step = {
    token: lp.tokens[0],
    logprob: lp.token_logprobs[0],
    top: lp.top_logprobs[0] || {},
    entropy: lp.entropy ? lp.entropy[0] : null,
  };
  col.steps.push(step);
  const span = document.createElement('span');
  const p = Math.exp(step.logprob);
  span.className = 't';
  span.textContent = step.token;
  span.dataset.k = String(k);
  span.style.background = shade(p);
  span.title = `p = ${fmtP(p)}`;
  col.querySelector('.out').append(span);
}

// The request body for a column; throws with a message for a chain that is not valid JSON.
function body(col, prompt, maxTokens, seed) {
  const text = col.querySelector('.chain').value.trim();
  let strategy = text;
  if (text.startsWith('{')) {
    try {
      strategy = JSON.parse(text);
    } catch (e) {
      throw new Error(`the chain is not valid JSON: ${e.message}`);
    }
  }
  return { prompt, max_tokens: maxTokens, seed, stream: true, logprobs: 10, strategy };
}

async function runColumn(col, prompt, maxTokens, seed, signal) {
  const out = col.querySelector('.out');
  const info = col.querySelector('.info');
  out.textContent = '';
  info.textContent = '';
  info.classList.remove('error');
  col.steps = [];
  col.dataset.state = 'running';
  const p = document.createElement('span');
  p.className = 'p';
  p.textContent = prompt;
  out.append(p);
  let req;
  try {
    req = body(col, prompt, maxTokens, seed);
  } catch (e) {
    fail(col, e.message);
    return;
  }
  const t0 = performance.now();
  let finish = null;
  try {
    const res = await fetch('/v1/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(req),
      signal,
    });
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try { message = (await res.json()).error.message; } catch (_) { /* keep the status */ }
      fail(col, message);
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, end);
        buf = buf.slice(end + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.error) { fail(col, chunk.error.message); return; }
          for (const ch of chunk.choices) {
            if (ch.logprobs && ch.logprobs.tokens.length) addToken(col, ch.logprobs);
            if (ch.finish_reason) finish = ch.finish_reason;
          }
        }
      }
      info.textContent = `${col.steps.length} tokens`;
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      info.textContent = `${col.steps.length} tokens, stopped`;
      col.dataset.state = 'stopped';
    } else {
      fail(col, `the request failed: ${e.message}`);
    }
    return;
  }
  const s = (performance.now() - t0) / 1000;
  const n = col.steps.length;
  const mean = n ? col.steps.reduce((a, x) => a + (x.entropy || 0), 0) / n : 0;
  info.textContent = `${n} tokens in ${s.toFixed(2)} s (${(n / s).toFixed(0)} tokens/s), `
    + `mean entropy ${mean.toFixed(2)} nats, finish: ${finish}`;
  col.dataset.state = 'done';
}

async function run() {
  const prompt = $('#prompt').value;
  const maxTokens = parseInt($('#max-tokens').value, 10);
  const seed = parseInt($('#seed').value, 10);
  if (!prompt) { note('type a prompt first'); return; }
  if (!(maxTokens >= 1)) { note('max tokens must be a whole number of at least 1'); return; }
  if (!(seed >= 0)) { note('seed must be a whole number of at least 0'); return; }
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  $('#detail').hidden = true;
  $('#stop').disabled = false;
  note('running…');
  const t0 = performance.now();
  await Promise.all(columns().map((c) => runColumn(c, prompt, maxTokens, seed, controller.signal)));
  if (state.controller === controller) {
    state.controller = null;
    $('#stop').disabled = true;
    note(`done in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }
}

function showDetail(col, k) {
  const step = col.steps[k];
  if (!step) return;
  for (const t of document.querySelectorAll('.t.picked')) t.classList.remove('picked');
  const span = col.querySelector(`.t[data-k="${k}"]`);
  if (span) span.classList.add('picked');
  const p = Math.exp(step.logprob);
  $('#detail-title').textContent = `step ${k + 1}: ${JSON.stringify(step.token)}`;
  const h = step.entropy;
  $('#detail-meta').textContent = `p = ${fmtP(p)} (logprob ${step.logprob.toFixed(3)}) · entropy `
    + (h == null ? 'n/a' : `${h.toFixed(3)} nats (perplexity ${Math.exp(h).toFixed(2)})`);
  const rows = Object.entries(step.top).sort((a, b) => b[1] - a[1]);
  const tbody = $('#alts tbody');
  tbody.textContent = '';
  rows.forEach(([token, lp], i) => {
    const tr = document.createElement('tr');
    if (token === step.token) tr.className = 'chosen';
    const q = Math.exp(lp);
    const cells = [String(i + 1), visible(token), fmtP(q)];
    cells.forEach((text, j) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (j === 1) td.className = 'name';
      tr.append(td);
    });
    const bar = document.createElement('td');
    bar.className = 'bar';
    const fill = document.createElement('div');
    fill.style.width = `${(q * 100).toFixed(1)}%`;
    bar.append(fill);
    tr.append(bar);
    tbody.append(tr);
  });
  if (!rows.some(([t]) => t === step.token)) {
    const tr = document.createElement('tr');
    tr.className = 'chosen';
    for (const text of ['>10', visible(step.token), fmtP(p), '']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tbody.append(tr);
  }
  $('#detail').hidden = false;
}

async function init() {
  $('#run').addEventListener('click', run);
  $('#stop').addEventListener('click', () => {
    if (!state.controller) return;
    state.controller.abort();
    state.controller = null;
    $('#stop').disabled = true;
    note('stopped');
  });
  $('#add').addEventListener('click', () => {
    const used = new Set(columns().map((c) => c.querySelector('.preset').value));
    addColumn(FIRST.find((n) => !used.has(n)) || FIRST[0]);
  });
  $('#prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  $('#columns').addEventListener('click', (e) => {
    const t = e.target.closest('.t');
    if (t) showDetail(t.closest('.column'), Number(t.dataset.k));
  });
  $('#detail-close').addEventListener('click', () => { $('#detail').hidden = true; });
  try {
    const [models, strategies] = await Promise.all([getJson('/v1/models'), getJson('/v1/strategies')]);
    $('#model').textContent = models.data.map((m) => m.id).join(', ');
    // Searches (beam, contrastive) do not stream: the server refuses them.
    state.presets = strategies.data.filter((s) => !s.search);
  } catch (e) {
    note(`cannot reach the server: ${e.message}`);
    return;
  }
  addColumn(FIRST[0]);
  addColumn(FIRST[1]);
  document.body.dataset.ready = '1';
}

init();
