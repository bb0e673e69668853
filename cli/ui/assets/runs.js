// The runs page: a status filter with counts, a search, auto-refresh.
'use strict';

const STATUSES = ['queued', 'running', 'suspended', 'failed', 'crashed', 'completed', 'cancelled'];
const params = new URLSearchParams(location.search);
let statusFilter = params.get('status') || '';
let search = params.get('q') || '';
let timer = null;

function keepInAddress() {
  const q = new URLSearchParams();
  if (statusFilter) q.set('status', statusFilter);
  if (search) q.set('q', search);
  history.replaceState(null, '', q.toString() ? '?' + q : location.pathname);
}

function renderChips(counts, total) {
  const chips = document.getElementById('status-chips');
  const all = Object.values(counts).reduce((a, b) => a + b, 0);
  const chip = (value, label, n) => {
    const b = Flow.el('button', {type: 'button', class: 'chip' + (statusFilter === value ? ' on' : ''),
                                 'data-status': value, role: 'tab', 'aria-selected': statusFilter === value},
                      label, ' ', Flow.el('span', {class: 'count', text: n}));
    b.addEventListener('click', () => { statusFilter = value; keepInAddress(); load(); });
    return b;
  };
  chips.replaceChildren(chip('', 'all', all), ...STATUSES.map(s => chip(s, s, counts[s] || 0)));
}

function renderRuns(data) {
  const body = document.getElementById('runs-body');
  if (!data.runs.length) {
    body.replaceChildren(Flow.el('tr', {}, Flow.el('td', {colspan: 6, class: 'muted',
      text: data.total ? 'No run matches.' : 'No runs in this store yet.'})));
  } else {
    body.replaceChildren(...data.runs.map(r => Flow.el('tr', {'data-run': r.id},
      Flow.el('td', {class: 'id'}, Flow.el('a', {href: Flow.runUrl(r.id), text: r.id})),
      Flow.el('td', {}, Flow.badge(r.status)),
      Flow.el('td', {class: 'num', text: r.effects}),
      Flow.el('td', {text: Flow.time(r.updated_ms)}),
      Flow.el('td', {class: 'program', text: r.program, title: r.program}),
      Flow.el('td', {class: 'detail', text: r.detail}))));
  }
  let footer = data.matched + ' of ' + data.total + ' runs';
  if (data.runs.length < data.matched) footer += ' (the newest ' + data.runs.length + ' shown)';
  if (data.unreadable.length) footer += '; unreadable: ' + data.unreadable.map(u => u.id + ' (' + u.error + ')').join(', ');
  document.getElementById('runs-footer').textContent = footer;
}

async function load() {
  const q = new URLSearchParams();
  if (statusFilter) q.set('status', statusFilter);
  if (search) q.set('q', search);
  try {
    const data = await Flow.api('/api/runs?' + q);
    renderChips(data.counts, data.total);
    renderRuns(data);
    Flow.say('');
  } catch (e) {
    Flow.say('Cannot list the runs: ' + e.message, 'bad');
  }
}

function schedule() {
  clearInterval(timer);
  if (document.getElementById('auto-refresh').checked) timer = setInterval(load, 3000);
}

document.addEventListener('DOMContentLoaded', () => {
  const box = document.getElementById('search');
  box.value = search;
  let pending = null;
  box.addEventListener('input', () => {
    clearTimeout(pending);
    pending = setTimeout(() => { search = box.value.trim(); keepInAddress(); load(); }, 150);
  });
  document.getElementById('auto-refresh').addEventListener('change', schedule);
  load();
  schedule();
});
