"""The explorer's page: one self-contained HTML file (no asset from the network). Its state is
its URL: ?text=...&run=A&run=B&sel=POSITION&k=5&t=1.0, so a link reproduces a view."""

PAGE = r"""<!doctype html><html lang=en><head><meta charset=utf-8><title>llm_input explorer</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.2em;color:#222}
textarea{width:100%;font-size:1.05em;padding:.4em;box-sizing:border-box}
.row{display:flex;gap:1.2em;flex-wrap:wrap;align-items:flex-start}.col{flex:1;min-width:380px}
.piece{display:inline-block;border:1px solid #bbb;border-radius:4px;margin:2px;padding:1px 4px;
 font-family:ui-monospace,monospace;cursor:pointer;background:#f7f7f7}
.piece.sel{background:#ffd966;border-color:#b58900}.id{color:#777;font-size:.75em;margin-left:3px}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}td,th{border:1px solid #ddd;padding:2px 5px}
th{background:#f3f3f3}h2{font-size:1.1em;margin:.8em 0 .3em}h3{font-size:.95em;margin:.6em 0 .2em}
.err{color:#b00020;font-weight:600}.note{color:#666;font-size:.85em}canvas{margin:2px;border:1px solid #eee}
.heads{display:flex;flex-wrap:wrap}.heads figure{margin:2px;font-size:.7em;text-align:center}
</style></head><body>
<h1 style="font-size:1.4em">llm_input explorer</h1>
<textarea id=text rows=2 placeholder="type a sentence"></textarea>
<div class=note>runs: <select id=run1></select> side by side with <select id=run2></select>
 · top-k <input id=k type=number min=1 max=50 value=5 style="width:3em">
 · temperature <input id=t type=number min=0.05 max=10 step=0.05 value=1 style="width:4em">
 · click a token to see what it attends to, its neighbours and the logit lens</div>
<div id=status class=note></div>
<h2>1. Text becomes tokens</h2><div id=tokens></div>
<div class=row id=panels></div>
<script>
const q = new URLSearchParams(location.search);
const state = {text: q.get('text') || 'The bank by the river', runs: q.getAll('run'),
               sel: q.has('sel') ? parseInt(q.get('sel')) : null, k: parseInt(q.get('k') || '5'),
               t: parseFloat(q.get('t') || '1')};
const $ = id => document.getElementById(id);
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function get(path, params) {
  const r = await fetch(path + '?' + new URLSearchParams(params));
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function saveUrl() {
  const p = new URLSearchParams({text: state.text});
  state.runs.forEach(r => p.append('run', r));
  if (state.sel !== null) p.set('sel', state.sel);
  p.set('k', state.k); p.set('t', state.t);
  history.replaceState(null, '', '?' + p);
}
function heat(weights, size) {
  const n = weights.length, c = document.createElement('canvas');
  c.width = c.height = size; const g = c.getContext('2d'), cell = size / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const v = Math.round(255 * (1 - weights[i][j]));
    g.fillStyle = `rgb(${v},${v},255)`; g.fillRect(j * cell, i * cell, cell + .5, cell + .5);
  }
  return c;
}
function piecesHtml(tokens, clickable) {
  return tokens.map((t, i) => `<span class="piece${clickable && i === state.sel ? ' sel' : ''}"` +
    ` data-pos=${i} data-id=${t.id} data-bytes=${t.bytes}>${esc(t.piece)}<span class=id>${t.id}</span></span>`).join('');
}
async function panel(run, box) {
  const v = await get('/api/view', {run, text: state.text, k: state.k, temperature: state.t});
  let html = `<h2>${esc(run)}</h2><div class=note>${esc(v.state)}</div>` +
    `<div class=pieces data-run="${esc(run)}">${piecesHtml(v.tokens, true)}</div>` +
    `<h3>2. What it predicts next (top ${state.k}, temperature ${state.t})</h3><table class=predictions>` +
    '<tr><th>after</th><th>most likely next tokens</th></tr>' +
    v.predictions.map((row, i) => `<tr data-pos=${i}><td>${esc(v.tokens[i].piece)}</td><td>` +
      row.map(p => `<span class=top data-id=${p.id} data-p="${p.p}">${esc(p.piece)} ${(100 * p.p).toFixed(1)}%</span>`).join(' · ') +
      '</td></tr>').join('') + '</table>';
  box.innerHTML = html;
  box.querySelectorAll('.piece').forEach(el => el.onclick = () => { state.sel = +el.dataset.pos; saveUrl(); render(); });
  const att = document.createElement('div');
  att.innerHTML = `<h3>3. Attention (${v.layers} layers x ${v.heads} heads; rows: query, columns: key)</h3>`;
  for (let l = 0; l < v.layers; l++) {
    const heads = document.createElement('div'); heads.className = 'heads';
    for (let h = 0; h < v.heads; h++) {
      const f = document.createElement('figure'); f.appendChild(heat(v.attention[l][h], 90));
      f.appendChild(document.createTextNode(`L${l} H${h}`)); heads.appendChild(f);
    }
    att.appendChild(heads);
  }
  box.appendChild(att);
  if (state.sel !== null && state.sel < v.tokens.length) {
    const s = state.sel, sel = document.createElement('div');
    let rows = '';
    for (let l = 0; l < v.layers; l++) for (let h = 0; h < v.heads; h++) {
      const w = v.attention[l][h][s], sum = w.reduce((a, b) => a + b, 0);
      const best = w.map((x, j) => [x, j]).sort((a, b) => b[0] - a[0]).slice(0, 3);
      rows += `<tr class=attends data-layer=${l} data-head=${h} data-sum="${sum}"><td>L${l} H${h}</td><td>` +
        best.map(([x, j]) => `${esc(v.tokens[j].piece)} ${x.toFixed(2)}`).join(' · ') + '</td></tr>';
    }
    sel.innerHTML = `<h3>What “${esc(v.tokens[s].piece)}” (position ${s}) attends to</h3><table class=attention-row>${rows}</table>`;
    box.appendChild(sel);
    const [nb, lens] = await Promise.all([get('/api/neighbours', {run, id: v.tokens[s].id}),
                                          get('/api/lens', {run, text: state.text, position: s})]);
    const nbHtml = ['trained', 'initialisation'].filter(k => nb[k]).map(k => `<h3>4. Neighbours of “${esc(nb.piece)}” (${k})</h3>` +
      '<table class=neighbours><tr><th>token</th><th>cosine</th><th>percentile among random pairs</th></tr>' +
      nb[k].map(n => `<tr><td>${esc(n.piece)}</td><td>${n.cosine.toFixed(3)}</td><td>${n.percentile.toFixed(1)}</td></tr>`).join('') + '</table>').join('');
    const lensHtml = '<h3>5. Logit lens: the top tokens after each layer</h3><table class=lens>' +
      lens.layers.map((row, l) => `<tr><td>after layer ${l}</td><td>` + row.map(p => `${esc(p.piece)} ${(100 * p.p).toFixed(1)}%`).join(' · ') + '</td></tr>').join('') + '</table>';
    const extra = document.createElement('div'); extra.innerHTML = nbHtml + lensHtml; box.appendChild(extra);
  }
}
let generation = 0;
async function render() {
  const mine = ++generation;
  document.body.dataset.ready = '0';
  $('status').textContent = '';
  try {
    const toks = await get('/api/tokens', {text: state.text});
    if (mine !== generation) return;
    $('tokens').innerHTML = toks.tokenizers.map(t => `<div class=tokenizer data-name="${esc(t.name)}"><b>${esc(t.name)}</b>: ` +
      `${t.tokens.length} tokens ${piecesHtml(t.tokens, false)}</div>`).join('');
    const panels = $('panels'); panels.innerHTML = '';
    for (const run of state.runs.filter(Boolean)) {
      const box = document.createElement('div'); box.className = 'col'; panels.appendChild(box);
      await panel(run, box);
    }
  } catch (e) {
    $('status').innerHTML = `<span class=err>${esc(e.message)}</span>`;
  }
  if (mine === generation) document.body.dataset.ready = '1';
}
async function start() {
  const runs = (await get('/api/runs', {})).runs;
  if (!state.runs.length) state.runs = [runs[0] && runs[0].name].filter(Boolean);
  for (const [i, id] of [[0, 'run1'], [1, 'run2']]) {
    $(id).innerHTML = (i ? '<option value="">(none)</option>' : '') +
      runs.map(r => `<option${state.runs[i] === r.name ? ' selected' : ''}>${esc(r.name)}</option>`).join('');
    $(id).onchange = () => { state.runs = [$('run1').value, $('run2').value].filter(Boolean); saveUrl(); render(); };
  }
  $('text').value = state.text; $('k').value = state.k; $('t').value = state.t;
  let timer = null;
  $('text').oninput = () => { clearTimeout(timer); timer = setTimeout(() => {
    state.text = $('text').value; state.sel = null; saveUrl(); render(); }, 250); };
  $('k').onchange = () => { state.k = parseInt($('k').value); saveUrl(); render(); };
  $('t').onchange = () => { state.t = parseFloat($('t').value); saveUrl(); render(); };
  saveUrl(); render();
}
start();
</script></body></html>
"""
