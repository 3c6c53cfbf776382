'use strict';
// minigpt's report page: draws the header, the sortable summary, the metric selector and the
// generation browser from the JSON in #data. Every text reaches the page through textContent.
(function () {
  const D = JSON.parse(document.getElementById('data').textContent);
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const num = (v) => {
    if (v === null || v === undefined) return '';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toFixed(a >= 100 ? 1 : 4)));
  };
  const temp = (t) => (t === null || t === undefined ? '—' : String(t));
  const isHuman = (model) => model === 'human' || model.startsWith('human (');
  const PAGE = 24;

  // Header.
  const meta = $('#meta');
  for (const [k, v] of D.header) meta.append(el('dt', { text: k }), el('dd', { text: v }));
  $('#config').textContent = D.config;
  if (D.bits_per_byte.length > 1) {
    const t = el('table');
    D.bits_per_byte.forEach((line, i) => {
      const tr = el('tr');
      for (const v of line) tr.append(el(i === 0 ? 'th' : 'td', { text: v }));
      t.append(tr);
    });
    $('#bpb').append(el('p', { text: 'Bits per byte on the held-out text:' }), t);
  }

  // Summary: metric columns that hold a value somewhere.
  const shown = D.metrics
    .map((m, i) => ({ ...m, i }))
    .filter((m) => D.summary.some((c) => c.values[m.i] !== null));
  const multiModel = new Set(D.summary.filter((c) => !isHuman(c.model)).map((c) => c.model)).size > 1;
  const columns = [
    ...(multiModel ? [{ name: 'model', def: 'The model (human: the references).', key: (c) => c.model, text: true }] : []),
    { name: 'strategy', def: 'The decoding strategy.', key: (c) => c.strategy, text: true },
    { name: 'temperature', def: 'The temperature (— for deterministic strategies).', key: (c) => c.temperature },
    { name: 'rows', def: 'Texts in the cell.', key: (c) => c.rows },
    ...shown.map((m) => ({ name: m.name, def: m.def, key: (c) => c.values[m.i], metric: m.i })),
  ];
  let sortBy = null;
  let sortDir = 1;
  const cells = D.summary.slice();
  function drawSummary() {
    const head = $('#summary thead');
    const body = $('#summary tbody');
    head.textContent = '';
    body.textContent = '';
    const tr = el('tr');
    columns.forEach((col, ci) => {
      const th = el('th', { text: col.name, title: col.def, class: col.text ? 'name' : '' });
      if (ci === sortBy) th.classList.add(sortDir > 0 ? 'sorted-asc' : 'sorted-desc');
      th.addEventListener('click', () => {
        sortDir = sortBy === ci ? -sortDir : 1;
        sortBy = ci;
        const k = col.key;
        cells.sort((a, b) => {
          const x = k(a);
          const y = k(b);
          if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
          if (y === null || y === undefined) return -1;
          return (typeof x === 'string' ? x.localeCompare(y) : x - y) * sortDir;
        });
        drawSummary();
      });
      tr.append(th);
    });
    head.append(tr);
    for (const c of cells) {
      const row = el('tr', { class: isHuman(c.model) ? 'human' : '' });
      for (const col of columns) {
        const v = col.key(c);
        if (col.text) {
          row.append(el('td', { class: 'name', text: v }));
        } else if (col.name === 'temperature') {
          row.append(el('td', { text: temp(v) }));
        } else {
          const td = el('td', { text: num(v) });
          if (col.metric !== undefined && c.lo[col.metric] !== null && v !== null) {
            td.append(el('span', { class: 'iv', text: ` [${num(c.lo[col.metric])}, ${num(c.hi[col.metric])}]` }));
          }
          row.append(td);
        }
      }
      body.append(row);
    }
  }
  drawSummary();

  // Plots: one chart at a time, chosen by metric; in an eval, the two models side by side.
  const metricSel = $('#metric');
  for (const p of D.plots) {
    const m = D.metrics.find((x) => x.name === p.metric);
    metricSel.append(el('option', { value: p.metric, text: p.metric, title: m ? m.def : '' }));
  }
  const sides = D.sides;
  function drawPlot() {
    const name = metricSel.value;
    const p = D.plots.find((x) => x.metric === name);
    // The SVG is minigpt's own chart, its labels escaped where it was drawn.
    $('#plot').innerHTML = p ? p.svg : '';
    const m = D.metrics.find((x) => x.name === name);
    $('#metric-def').textContent = m ? `${name}: ${m.def}` : '';
    const box = $('#compare');
    box.textContent = '';
    if (sides.length !== 2 || !m) return;
    const i = D.metrics.indexOf(m);
    const [cand, base] = sides.map((s) => s[1]);
    const t = el('table');
    const headRow = el('tr');
    for (const h of ['strategy', 'temperature', `${cand} (candidate)`, `${base} (baseline)`, 'difference']) {
      headRow.append(el('th', { text: h }));
    }
    t.append(headRow);
    const cell = (c) =>
      c && c.values[i] !== null
        ? num(c.values[i]) + (c.lo[i] !== null ? ` [${num(c.lo[i])}, ${num(c.hi[i])}]` : '')
        : '';
    for (const c of D.summary.filter((x) => x.model === cand)) {
      const b = D.summary.find((x) => x.model === base && x.strategy === c.strategy && x.temperature === c.temperature);
      const d = b && c.values[i] !== null && b.values[i] !== null ? num(c.values[i] - b.values[i]) : '';
      const row = el('tr');
      for (const v of [c.strategy, temp(c.temperature), cell(c), cell(b), d]) row.append(el('td', { text: v }));
      t.append(row);
    }
    box.append(el('p', { class: 'hint', text: `${name}: candidate and baseline side by side.` }), t);
  }
  metricSel.addEventListener('change', drawPlot);
  drawPlot();

  // Generation browser.
  const promptSel = $('#prompt');
  D.prompts.forEach((p, i) => {
    const short = p.replace(/\s+/g, ' ').slice(0, 60);
    promptSel.append(el('option', { value: String(i), text: `#${i}: ${short}` }));
  });
  const fill = (sel, values, label) => {
    sel.append(el('option', { value: '', text: 'all' }));
    values.forEach((v, i) => sel.append(el('option', { value: String(i), text: label(v) })));
  };
  fill($('#f-model'), D.models, (m) => m);
  fill($('#f-strategy'), D.strategies, (s) => s);
  const temps = [...new Set(D.texts.map((x) => (x.t === null || x.t === undefined ? null : x.t)))].sort(
    (a, b) => (a === null ? -1 : b === null ? 1 : a - b),
  );
  fill($('#f-temperature'), temps, temp);
  let page = 0;
  function selected() {
    const p = Number(promptSel.value || 0);
    const fm = $('#f-model').value;
    const fs = $('#f-strategy').value;
    const ft = $('#f-temperature').value;
    const q = $('#search').value.toLowerCase();
    const out = D.texts.filter(
      (x) =>
        x.p === p &&
        (fm === '' || x.m === Number(fm)) &&
        (fs === '' || x.s === Number(fs)) &&
        (ft === '' || (x.t ?? null) === temps[Number(ft)]) &&
        (q === '' || x.x.toLowerCase().includes(q)),
    );
    // Human references first, then by model, strategy, temperature and sample.
    const human = (x) => (isHuman(D.models[x.m]) ? 0 : 1);
    out.sort((a, b) => human(a) - human(b) || a.m - b.m || a.s - b.s || (a.t ?? -1) - (b.t ?? -1) || a.k - b.k);
    return out;
  }
  function tokens(x) {
    const box = el('pre', { class: 'text' });
    if (!x.tok) {
      box.textContent = x.x;
      return box;
    }
    // Rows cut to a character budget end inside their last token: show the text's own end.
    const whole = x.tok.join('');
    let left = whole.startsWith(x.x) ? x.x.length : whole.length;
    x.tok.forEach((tokenText, i) => {
      if (left <= 0) return;
      const s = tokenText.slice(0, left);
      left -= tokenText.length;
      const lp = x.lp[i] / 10;
      const p = Math.exp(lp);
      const span = el('span', {
        class: x.lf !== undefined && i >= x.lf ? 't loop' : 't',
        title: `p = ${p < 0.001 ? p.toExponential(1) : p.toFixed(3)} (log-prob ${lp.toFixed(1)} nats) · entropy ${(x.h[i] / 10).toFixed(1)} nats`,
        style: `background: rgba(214, 39, 40, ${(0.7 * (1 - p)).toFixed(2)})`,
      });
      span.textContent = s;
      box.append(span);
    });
    return box;
  }
  function drawCards() {
    const p = Number(promptSel.value || 0);
    $('#prompt-text').textContent = D.prompts[p] ?? '';
    const all = selected();
    const pages = Math.max(1, Math.ceil(all.length / PAGE));
    page = Math.min(page, pages - 1);
    const from = page * PAGE;
    const shownTexts = all.slice(from, from + PAGE);
    $('#count').textContent = all.length
      ? `texts ${from + 1}–${from + shownTexts.length} of ${all.length} (page ${page + 1} of ${pages})`
      : 'no text matches';
    $('#prev').disabled = page === 0;
    $('#next').disabled = page >= pages - 1;
    const cards = $('#cards');
    cards.textContent = '';
    for (const x of shownTexts) {
      const model = D.models[x.m];
      const human = isHuman(model);
      const title = human
        ? `${model}: the reference continuation`
        : `${multiModel ? model + ' · ' : ''}${D.strategies[x.s]} · T ${temp(x.t)} · sample ${x.k} · ${x.f}`;
      const card = el('div', { class: human ? 'card human' : 'card' }, el('h3', { text: title }), tokens(x));
      cards.append(card);
    }
  }
  for (const id of ['#prompt', '#f-model', '#f-strategy', '#f-temperature']) {
    $(id).addEventListener('change', () => {
      page = 0;
      drawCards();
    });
  }
  $('#search').addEventListener('input', () => {
    page = 0;
    drawCards();
  });
  $('#prev').addEventListener('click', () => {
    page -= 1;
    drawCards();
  });
  $('#next').addEventListener('click', () => {
    page += 1;
    drawCards();
  });
  drawCards();
  document.body.dataset.ready = String(performance.now());
})();
