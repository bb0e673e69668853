// Shared by the pages. Everything from the server is put in the page as text (textContent),
// never as markup: run ids, programs and values may hold anything.
'use strict';

const Flow = {
  async api(path, options) {
    const response = await fetch(path, Object.assign({credentials: 'same-origin'}, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const error = new Error((body && body.error) || ('HTTP ' + response.status));
      error.status = response.status;
      throw error;
    }
    return body;
  },

  post(path, body) {
    return Flow.api(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                           body: JSON.stringify(body || {})});
  },

  // el('a', {class: 'x', href: '/runs/1'}, 'text', child...)
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'style') node.style.cssText = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  runUrl(id) { return '/runs/' + encodeURIComponent(id); },
  apiRun(id) { return '/api/runs/' + encodeURIComponent(id); },

  time(ms) {
    if (!ms) return '–';
    const d = new Date(ms);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  },

  duration(us) {
    if (us < 1000) return us + ' µs';
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 1 : 0) + ' ms';
    if (us < 6e7) return (us / 1e6).toFixed(1) + ' s';
    if (us < 3.6e9) return (us / 6e7).toFixed(1) + ' min';
    return (us / 3.6e9).toFixed(1) + ' h';
  },

  badge(status) { return Flow.el('span', {class: 'badge s-' + status, text: status}); },

  say(text, kind) {
    const node = document.getElementById('message');
    node.textContent = text || '';
    node.className = 'message' + (kind ? ' ' + kind : '');
  },
};
