// The run page: its record, its error with the source lines of its stack, a timeline of
// its history (virtualized: only the rows in view exist, fetched a page at a time, so a run
// of any length opens as fast as a short one), the state at a chosen checkpoint, actions.
'use strict';

const runId = decodeURIComponent(location.pathname.replace(/^\/runs\//, ''));
const ROW = 24;           // px per timeline row (fixed: the scroller computes positions)
const PAGE = 200;         // history entries per request
const pages = new Map();  // page index -> entries, or a promise while it loads
let total = 0;
let run = null;
let selectedAt = null;    // the effect whose state is shown (null: the last checkpoint)
let span = {start: 0, end: 1};

// ---- the record ----

function renderMeta(r) {
  document.title = 'Flow run ' + r.id;
  document.getElementById('run-id').textContent = r.id;
  const status = document.getElementById('run-status');
  status.textContent = r.status;
  status.className = 'badge s-' + r.status;
  const rows = [
    ['program', r.program],
    ['effects', String(r.effects)],
    ['started', Flow.time(r.created_ms)],
    ['updated', Flow.time(r.updated_ms)],
    ['arguments', Object.keys(r.args).length ? Object.entries(r.args).map(([k, v]) => k + '=' + v).join('  ') : '–'],
    ['detail', r.detail || '–'],
  ];
  if (r.waiting_signal) rows.push(['waiting for', 'signal ' + r.waiting_signal]);
  if (r.live) rows.push(['process', 'pid ' + r.pid + ' (executing now)']);
  if (r.origin) rows.push(['origin', r.origin.kind === 'fork'
    ? Flow.el('span', {}, 'fork of run ', runLink(r.origin.run), ' after its effect ' + r.origin.effect)
    : Flow.el('span', {}, 'rerun of run ', runLink(r.origin.run))]);
  if (!r.source.available) rows.push(['source', r.source.note]);
  else if (r.source.file_on_disk === 'changed')
    rows.push(['source', r.source.file + ' has changed since the run started; the lines shown are the code the run executes']);
  document.getElementById('run-meta').replaceChildren(
    ...rows.flatMap(([k, v]) => [Flow.el('dt', {text: k}), Flow.el('dd', {}, v)]));
  document.getElementById('btn-resume').disabled = !r.can.resume;
  document.getElementById('btn-cancel').disabled = !r.can.cancel;
  document.getElementById('btn-rerun').disabled = !r.can.rerun;
  document.getElementById('fork-form').querySelector('button').disabled = !r.can.fork;
  // A fixed file is what a rerun usually wants: offered when the file changed.
  const useFile = document.getElementById('rerun-use-file');
  if (!useFile.dataset.touched) useFile.checked = r.source.file_on_disk === 'changed';
  useFile.disabled = r.source.file_on_disk === 'gone';
  document.getElementById('signal-form').querySelector('button').disabled = !r.can.signal;
  if (r.waiting_signal && !document.getElementById('signal-name').value)
    document.getElementById('signal-name').value = r.waiting_signal;
}

function renderError(r) {
  const section = document.getElementById('error-section');
  if (!r.error) { section.hidden = true; return; }
  section.hidden = false;
  const e = r.error;
  document.getElementById('error-kind').textContent = e.kind ? e.kind + ':' : '';
  document.getElementById('error-message').textContent = e.message;
  const data = document.getElementById('error-data');
  data.hidden = !e.data;
  data.textContent = e.data ? 'data: ' + e.data : '';
  let note = '';
  if (!e.has_stack) note = 'Only the first line of this error was kept (the run ended before errors were kept whole).';
  else if (!r.source.available) note = 'No source lines: ' + r.source.note + '.';
  else if (r.source.file_on_disk === 'changed')
    note = 'Source lines below are the code the run executed (stored with it); ' + r.source.file + ' has changed since.';
  document.getElementById('error-note').textContent = note;
  document.getElementById('error-stack').replaceChildren(...e.stack.map(frame => {
    const item = Flow.el('li', {}, Flow.el('code', {class: 'frame', text: 'at ' + frame.text}));
    if (frame.source.length) {
      const lines = frame.source.map(l => Flow.el('div', {class: 'src' + (l.line === frame.line ? ' hit' : ''),
                                                          'data-line': l.line},
        Flow.el('span', {class: 'ln', text: l.line}), Flow.el('span', {class: 'code', text: l.text})));
      item.append(Flow.el('div', {class: 'source'}, ...lines));
    }
    return item;
  }));
}

async function loadRun() {
  try {
    run = await Flow.api(Flow.apiRun(runId));
  } catch (e) {
    Flow.say('Cannot read run ' + runId + ': ' + e.message, 'bad');
    return false;
  }
  span.start = run.created_ms;
  span.end = Math.max(run.updated_ms, run.created_ms + 1);
  renderMeta(run);
  renderError(run);
  return true;
}

// ---- the timeline ----

function fetchPage(index) {
  if (pages.has(index)) return pages.get(index);
  const kind = document.getElementById('timeline-kind').value;
  const promise = Flow.api(Flow.apiRun(runId) + '/history?offset=' + index * PAGE + '&limit=' + PAGE +
                           (kind ? '&kind=' + kind : '')).then(page => {
    pages.set(index, page.entries);
    total = page.total;
    return page.entries;
  });
  pages.set(index, promise);
  return promise;
}

function entryAt(i) {
  const page = pages.get(Math.floor(i / PAGE));
  return Array.isArray(page) ? page[i % PAGE] : null;
}

function describe(e) {
  if (e.effect === 'step' || e.effect === 'step done') return e.effect + ' ' + e.idempotency_key;
  return e.effect;
}

function runLink(id) {
  return Flow.el('a', {href: Flow.runUrl(id), text: id});
}

function row(i) {
  const e = entryAt(i);
  const node = Flow.el('div', {class: 'tl-row', style: 'top:' + i * ROW + 'px', 'data-index': i});
  if (!e) { node.append(Flow.el('span', {class: 'muted', text: '…'})); return node; }
  const step = e.effect === 'step' || e.effect === 'step done';
  const width = span.end - span.start;
  const left = Math.max(0, Math.min(100, (e.started_ms - span.start) / width * 100));
  const size = Math.max(0.4, Math.min(100 - left, e.duration_us / 1000 / width * 100));
  node.classList.add('st-' + e.state.replace(/[^a-z_-]/g, ''));
  if (step) node.classList.add('step');
  if (!step && e.seq === selectedAt) node.classList.add('selected');
  node.dataset.seq = e.seq;
  node.append(
    Flow.el('span', {class: 'c-seq', text: step ? '' : e.seq}),
    Flow.el('span', {class: 'c-time', text: '+' + Flow.duration(Math.max(0, e.started_ms - span.start) * 1000)}),
    Flow.el('span', {class: 'c-bar', title: Flow.duration(e.duration_us)},
            Flow.el('span', {class: 'bar', style: 'left:' + left + '%;width:' + size + '%'})),
    Flow.el('span', {class: 'c-effect', text: describe(e), title: e.idempotency_key}),
    Flow.el('span', {class: 'c-task', text: e.task || 'main'}),
    Flow.el('span', {class: 'c-state', text: e.state}),
    Flow.el('span', {class: 'c-detail', text: e.args + ' → ' + e.result, title: e.args + ' → ' + e.result}));
  if (!step) {
    node.addEventListener('click', () => selectCheckpoint(e.seq));
    node.title = 'Show the state after effect ' + e.seq;
  }
  return node;
}

function drawTimeline() {
  const viewport = document.getElementById('tl-viewport');
  const spacer = document.getElementById('tl-spacer');
  spacer.style.height = total * ROW + 'px';
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 10);
  const last = Math.min(total, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW) + 10);
  const rows = [];
  const missing = new Set();
  for (let i = first; i < last; i++) {
    if (!entryAt(i)) missing.add(Math.floor(i / PAGE));
    rows.push(row(i));
  }
  spacer.replaceChildren(...rows);
  for (const index of missing) fetchPage(index).then(drawTimeline, e => Flow.say('Cannot read the history: ' + e.message, 'bad'));
  document.getElementById('timeline-count').textContent = total + ' entries';
}

async function loadTimeline(fresh) {
  if (fresh) pages.clear();
  try {
    await fetchPage(0);
  } catch (e) {
    document.getElementById('timeline-count').textContent = '(' + e.message + ')';
    return;
  }
  drawTimeline();
  // The first rows are on the page: what the page-speed test reads.
  document.documentElement.dataset.timelineReadyMs = performance.now().toFixed(1);
}

// ---- the state at a checkpoint ----

function valuesTable(values) {
  if (!values.length) return Flow.el('p', {class: 'muted', text: 'none'});
  return Flow.el('table', {class: 'values'}, ...values.map(v => Flow.el('tr', {},
    Flow.el('th', {text: v.name}), Flow.el('td', {}, Flow.el('code', {text: v.json + (v.truncated ? ' …' : '')})))));
}

function framesList(frames) {
  return frames.map(f => Flow.el('div', {class: 'frame-box'},
    Flow.el('div', {class: 'frame-title', text: f.function + ' — line ' + f.line + ' (pc ' + f.pc + ')'}),
    valuesTable(f.locals)));
}

async function selectCheckpoint(at) {
  selectedAt = at;
  drawTimeline();
  // The address names the checkpoint shown (a link to it, a reload keeps it).
  const url = new URL(location.href);
  if (at === null) url.searchParams.delete('at'); else url.searchParams.set('at', at);
  history.replaceState(null, '', url);
  document.getElementById('fork-at').textContent =
    at === null ? 'the last checkpoint' : 'the checkpoint after effect ' + at;
  const body = document.getElementById('state-body');
  const note = document.getElementById('state-note');
  try {
    const s = await Flow.api(Flow.apiRun(runId) + '/state' + (at === null ? '' : '?at=' + at));
    document.getElementById('state-title').textContent =
      'after effect ' + s.shown_after_effect + ' (checkpoint ' + s.checkpoint + ', ' + Flow.time(s.checkpoint_ms) + ')';
    note.hidden = !s.at_not_kept;
    note.textContent = s.note;
    const parts = [Flow.el('h3', {text: 'Frames (innermost first)'}), ...framesList(s.frames)];
    if (s.top_level) parts.push(Flow.el('p', {class: 'muted', text: 'top level: ' + s.top_level}));
    parts.push(Flow.el('h3', {text: 'Globals'}), valuesTable(s.globals));
    if (s.tasks.length) {
      parts.push(Flow.el('h3', {text: 'Tasks'}));
      for (const t of s.tasks) {
        parts.push(Flow.el('div', {class: 'task-title', text: 'task ' + t.path + ': ' + t.state +
                                                             (t.waits_for ? ' on ' + t.waits_for : '')}));
        parts.push(...framesList(t.frames));
      }
    }
    body.className = '';
    body.replaceChildren(...parts);
  } catch (e) {
    note.hidden = true;
    body.className = 'muted';
    body.textContent = 'No state to show: ' + e.message;
  }
}

// ---- actions ----

// NAME=JSON, one a line, for fork's --set; null (and a message) if one is not.
function parseSets(text) {
  const set = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) { Flow.say('Each line is NAME=JSON: `' + line + '`', 'bad'); return null; }
    try { set[line.slice(0, eq).trim()] = JSON.parse(line.slice(eq + 1)); } catch (e) {
      Flow.say('The value of ' + line.slice(0, eq).trim() + ' is not JSON: ' + e.message, 'bad');
      return null;
    }
  }
  return set;
}

async function watchAction(id, what, newRun) {
  for (;;) {
    await new Promise(done => setTimeout(done, 500));
    let a;
    try { a = await Flow.api('/api/actions/' + id); } catch (e) { Flow.say(what + ': ' + e.message, 'bad'); return; }
    if (!a.done) continue;
    const tail = a.output.trim().split('\n').slice(-3).join(' / ');
    Flow.say(what + ' finished (exit ' + a.exit_code + ')' + (tail ? ': ' + tail : ''), a.exit_code === 0 ? 'good' : 'bad');
    if (newRun) document.getElementById('message').append(' — ', Flow.el('a', {href: Flow.runUrl(newRun), id: 'new-run-link',
                                                                               text: 'open run ' + newRun}));
    await refresh();
    return;
  }
}

async function act(command, body) {
  try {
    const answer = await Flow.post(Flow.apiRun(runId) + '/' + command, body);
    Flow.say(answer.message || command + ' sent', 'good');
    if (answer.action) watchAction(answer.action, 'flow ' + command, answer.new_run);
    else await refresh();
  } catch (e) {
    Flow.say(command + ': ' + e.message, 'bad');
  }
}

async function refresh() {
  if (await loadRun()) await loadTimeline(true);
  if (run) await selectCheckpoint(selectedAt);
}

document.addEventListener('DOMContentLoaded', async () => {
  document.getElementById('btn-resume').addEventListener('click', () => act('resume'));
  document.getElementById('btn-cancel').addEventListener('click', () => {
    if (confirm('Cancel run ' + runId + '? It raises `cancelled` where it is and its handlers run.')) act('cancel');
  });
  document.getElementById('rerun-use-file').addEventListener('change', event => { event.target.dataset.touched = '1'; });
  document.getElementById('btn-rerun').addEventListener('click', () =>
    act('rerun', {use_file_on_disk: document.getElementById('rerun-use-file').checked}));
  document.getElementById('fork-form').addEventListener('submit', event => {
    event.preventDefault();
    const set = parseSets(document.getElementById('fork-sets').value);
    if (!set) return;
    act('fork', selectedAt === null ? {set} : {at: selectedAt, set});
  });
  document.getElementById('signal-form').addEventListener('submit', event => {
    event.preventDefault();
    const name = document.getElementById('signal-name').value.trim();
    const text = document.getElementById('signal-value').value.trim();
    let value = null;
    if (text) {
      try { value = JSON.parse(text); } catch (e) { Flow.say('The value is not JSON: ' + e.message, 'bad'); return; }
    }
    act('signal', {name, value});
  });
  document.getElementById('timeline-kind').addEventListener('change', () => {
    document.getElementById('tl-viewport').scrollTop = 0;
    loadTimeline(true);
  });
  let pending = false;
  document.getElementById('tl-viewport').addEventListener('scroll', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawTimeline(); });
  });
  // The record and the first page of the history are asked for at once; the state (a
  // whole VM to restore) after the first rows are drawn.
  fetchPage(0).catch(() => {});
  if (!(await loadRun())) return;
  await loadTimeline(false);
  const at = new URLSearchParams(location.search).get('at');
  await selectCheckpoint(at !== null && /^\d+$/.test(at) ? Number(at) : null);
  // A run that may still change is read again every few seconds; when it changes (a
  // resume from another terminal, the worker), its timeline and state are read again.
  setInterval(async () => {
    if (!run || (run.status !== 'running' && run.status !== 'suspended')) return;
    const before = run.status + '/' + run.effects;
    if (await loadRun() && run.status + '/' + run.effects !== before) {
      await loadTimeline(true);
      await selectCheckpoint(selectedAt);
    }
  }, 3000);
});
