/* The DPO console: sign in with client credentials, then charts, events, subjects, exports.
 *
 * The access token lives in this closure only (never in storage or cookies), so a reload
 * or a closed tab signs out. Every call goes to the same origin with the bearer token.
 */
(function () {
  'use strict';

  var session = {token: null, scopes: [], expiresAt: 0};
  var COLORS = ['#1d3557', '#e76f51', '#2a9d8f', '#8338ec', '#e9c46a', '#6d6875'];
  var SVG = 'http://www.w3.org/2000/svg';
  var reportUrl = null;
  var exportUrl = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { node.textContent = attrs[k]; } else if (k === 'className') { node.className = attrs[k]; } else {
        node.setAttribute(k, attrs[k]);
      }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); } });
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  // -- calls --------------------------------------------------------------------------------

  async function api(path, options) {
    options = options || {};
    var headers = Object.assign({Authorization: 'Bearer ' + session.token}, options.headers || {});
    var response = await fetch(path, {method: options.method || 'GET', headers: headers, credentials: 'omit'});
    if (response.status === 401) {
      signOut('Your session has ended; please sign in again.');
      throw new Error('not signed in');
    }
    if (!response.ok) {
      var problem = null;
      try { problem = await response.json(); } catch (e) { problem = null; }
      var message = problem && problem.detail ? problem.detail : 'HTTP ' + response.status;
      if (response.status === 403) { message = 'Not allowed for this client: ' + message; }
      throw new Error(message);
    }
    return response;
  }

  async function apiJson(path, options) {
    return (await api(path, options)).json();
  }

  function guard(errorId, fn) {
    return function (event) {
      if (event && event.preventDefault) { event.preventDefault(); }
      $(errorId).textContent = '';
      return Promise.resolve().then(fn).catch(function (e) {
        if (session.token) { $(errorId).textContent = e.message; }
      });
    };
  }

  // -- sign in --------------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    var error = $('sign-in-error');
    error.textContent = '';
    var form = new URLSearchParams();
    form.set('grant_type', 'client_credentials');
    form.set('client_id', $('client-id').value.trim());
    form.set('client_secret', $('client-secret').value);
    var response = await fetch('/oauth/token', {
      method: 'POST', body: form, credentials: 'omit',
      headers: {'Content-Type': 'application/x-www-form-urlencoded'}
    });
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok || !body || !body.access_token) {
      error.textContent = (body && (body.error_description || body.detail)) || 'Sign-in failed.';
      return;
    }
    $('client-secret').value = '';
    session.token = body.access_token;
    session.scopes = (body.scope || '').split(' ').filter(Boolean);
    session.expiresAt = Date.now() + (body.expires_in || 0) * 1000;
    $('who').textContent = 'Signed in as ' + $('client-id').value.trim() + ' (' + session.scopes.join(', ') + ')';
    $('who').hidden = false;
    $('sign-out').hidden = false;
    $('sign-in').hidden = true;
    $('app').hidden = false;
    if (session.scopes.indexOf('audit:read') < 0) {
      $('rates-error').textContent = 'This client lacks audit:read: no rates, events, exports or report.';
      return;
    }
    loadRates();
    loadEvents();
  }

  function signOut(message) {
    session.token = null;
    session.scopes = [];
    $('app').hidden = true;
    $('sign-in').hidden = false;
    $('who').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in-error').textContent = typeof message === 'string' ? message : '';
    [reportUrl, exportUrl].forEach(function (u) { if (u) { URL.revokeObjectURL(u); } });
    reportUrl = exportUrl = null;
    $('report-frame').hidden = true;
    $('report-frame').removeAttribute('src');
    $('report-open').hidden = true;
    clear($('subject-result'));
    clear($('export-result'));
    $('client-id').focus();
  }

  // -- consent rates ---------------------------------------------------------------------------

  function percent(rate) { return rate === null ? '—' : Math.round(rate * 1000) / 10 + ' %'; }

  function drawChart(report) {
    var box = $('chart');
    clear(box);
    var W = 760;
    var H = 260;
    var M = {l: 44, r: 12, t: 12, b: 28};
    var days = report.purposes.length ? report.purposes[0].series.map(function (p) { return p.date; }) : [];
    var n = Math.max(days.length - 1, 1);
    function x(i) { return M.l + (W - M.l - M.r) * i / n; }
    function y(rate) { return M.t + (H - M.t - M.b) * (1 - rate); }
    var chart = svg('svg', {viewBox: '0 0 ' + W + ' ' + H, role: 'img',
                           'aria-labelledby': 'chart-title', id: 'rates-chart'});
    chart.appendChild(svg('title', {id: 'chart-title'},
      'Consent rate per purpose and day, ' + report.since + ' to ' + report.until));
    [0, 0.25, 0.5, 0.75, 1].forEach(function (r) {
      chart.appendChild(svg('line', {x1: M.l, x2: W - M.r, y1: y(r), y2: y(r), class: r === 0 ? 'axis' : 'grid'}));
      chart.appendChild(svg('text', {x: M.l - 6, y: y(r) + 4, 'text-anchor': 'end'}, (r * 100) + '%'));
    });
    [0, Math.floor(n / 2), n].forEach(function (i) {
      if (days[i]) {
        chart.appendChild(svg('text', {x: x(i), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === n ? 'end' : 'middle'},
          days[i]));
      }
    });
    var legend = el('ul', {className: 'legend'});
    report.purposes.forEach(function (purpose, k) {
      var color = COLORS[k % COLORS.length];
      var group = svg('g', {'data-purpose': purpose.purpose, stroke: color, fill: color});
      var segment = [];
      function flush() {
        if (segment.length > 1) {
          group.appendChild(svg('polyline', {points: segment.join(' '), fill: 'none', 'stroke-width': 2.5,
                                             'stroke-linejoin': 'round', 'stroke-linecap': 'round'}));
        }
        segment = [];
      }
      purpose.series.forEach(function (point, i) {
        if (point.rate === null) { flush(); return; }
        segment.push(x(i).toFixed(1) + ',' + y(point.rate).toFixed(1));
        var dot = svg('circle', {cx: x(i).toFixed(1), cy: y(point.rate).toFixed(1), r: 3.5, class: 'point'});
        dot.appendChild(svg('title', {}, purpose.title + ', ' + point.date + ': ' + percent(point.rate) + ' (' +
          point.granted + ' granted, ' + point.denied + ' denied)'));
        group.appendChild(dot);
      });
      flush();
      chart.appendChild(group);
      var swatch = el('span');
      swatch.style.background = color;
      legend.appendChild(el('li', {}, [swatch, purpose.title + ' (' + purpose.purpose + ')']));
    });
    box.appendChild(chart);
    box.appendChild(legend);
  }

  async function loadRates() {
    var report = await apiJson('/v1/reports/consent-rates?days=30').catch(function (e) {
      $('rates-error').textContent = e.message;
      return null;
    });
    if (!report) { return; }
    drawChart(report);
    var body = $('rates-table').tBodies[0];
    clear(body);
    report.purposes.forEach(function (p) {
      body.appendChild(el('tr', {}, [el('td', {text: p.title + ' (' + p.purpose + ')'}),
        el('td', {text: p.legal_basis || '—'}), el('td', {text: String(p.granted)}),
        el('td', {text: String(p.denied)}), el('td', {text: percent(p.rate)})]));
    });
  }

  // -- recent events -----------------------------------------------------------------------------

  var DETAIL_KEYS = ['purpose', 'status', 'method', 'placement', 'rule', 'personalized', 'attributes', 'reason',
                     'scope', 'receipt_id', 'decision_id', 'notice_id', 'client_id', 'property_id', 'locale'];

  function details(data) {
    return DETAIL_KEYS.filter(function (k) { return data[k] !== undefined && data[k] !== null; }).map(function (k) {
      var v = data[k];
      return k + '=' + (Array.isArray(v) ? '[' + v.join(', ') + ']' : String(v));
    }).join('  ');
  }

  async function loadEvents() {
    var params = new URLSearchParams();
    params.set('limit', $('events-limit').value);
    if ($('events-type').value) { params.set('type', $('events-type').value); }
    if ($('events-subject').value.trim()) { params.set('subject_id', $('events-subject').value.trim()); }
    var result = await apiJson('/v1/audit/recent?' + params.toString());
    var body = $('events-table').tBodies[0];
    clear(body);
    if (!result.events.length) {
      body.appendChild(el('tr', {}, [el('td', {colspan: '6', className: 'pending', text: 'No events match.'})]));
    }
    result.events.forEach(function (e) {
      body.appendChild(el('tr', {'data-type': e.type}, [
        el('td', {className: 'mono', text: e.at.replace('T', ' ').slice(0, 19)}),
        el('td', {text: e.type}),
        el('td', {className: 'mono', text: e.actor}),
        el('td', {className: 'mono', title: e.subject || '', text: e.subject ? e.subject.slice(0, 12) + '…' : '—'}),
        el('td', {text: details(e.data)}),
        el('td', {className: e.sealed ? 'mono' : 'pending', text: e.sealed ? String(e.seq) : 'sealing'})
      ]));
    });
  }

  // -- subjects -------------------------------------------------------------------------------

  function subjectPath(id) { return '/v1/subjects/' + encodeURIComponent(id); }

  async function exportSubject() {
    var id = $('subject-id').value.trim();
    if (!id) { throw new Error('Enter a subject id.'); }
    var data = await apiJson(subjectPath(id) + '/export');
    var box = $('subject-result');
    clear(box);
    var blob = new Blob([JSON.stringify(data, null, 2)], {type: 'application/json'});
    var link = el('a', {href: URL.createObjectURL(blob), download: 'subject-export.json', text: 'Download the export (JSON)'});
    var lines = [];
    if (data.erasure) {
      lines.push('Erased at ' + data.erasure.erased_at + ' by ' + data.erasure.actor + '.');
    } else {
      var states = ((data.consents && data.consents.purposes) || []).map(function (p) { return p.purpose + ': ' + p.status; });
      lines.push('Consents: ' + (states.join(', ') || 'none'));
      lines.push('Profile attributes: ' + ((data.profile || []).map(function (a) { return a.attribute; }).join(', ') || 'none'));
      lines.push('Decisions: ' + (data.decisions || []).length + ', audit events: ' + (data.audit_events || []).length);
    }
    box.appendChild(el('ul', {className: 'checks', id: 'subject-summary'}, lines.map(function (l) { return el('li', {text: l}); })));
    box.appendChild(link);
    box.appendChild(el('details', {}, [el('summary', {text: 'Show the JSON'}), el('pre', {text: JSON.stringify(data, null, 2)})]));
  }

  function askErase() {
    var id = $('subject-id').value.trim();
    if (!id) { $('subject-error').textContent = 'Enter a subject id.'; return; }
    $('erase-subject').textContent = id;
    var dialog = $('erase-dialog');
    dialog.returnValue = '';
    dialog.showModal();
  }

  async function eraseConfirmed() {
    var id = $('subject-id').value.trim();
    var result = await apiJson(subjectPath(id), {method: 'DELETE'});
    var box = $('subject-result');
    clear(box);
    box.appendChild(el('p', {className: 'ok', id: 'erase-done', text: 'Erased ' + result.subject_id + ' at ' +
      result.erased_at + '.'}));
    loadEvents().catch(function () { /* shown on the next refresh */ });
  }

  // -- audit export and its verification ----------------------------------------------------------

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return (b + 0x100).toString(16).slice(1); }).join('');
  }

  function base64Bytes(text) {
    var raw = atob(text.replace(/\s+/g, ''));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  async function sha256Hex(bytes) { return hex(await crypto.subtle.digest('SHA-256', bytes)); }

  // The hashed and signed texts are the canonical JSON of the object without one member. The
  // export's lines are themselves canonical JSON, so removing that member's text gives the exact
  // bytes, with no re-serialisation (and so no disagreement about numbers or escapes).
  function without(text, member, pattern) {
    var re = new RegExp(',"' + member + '":"' + pattern + '"', 'g');
    var found = text.match(re);
    if (!found || found.length !== 1) { return null; }
    return text.replace(re, '');
  }

  async function verifyExport(bytes) {
    var end = bytes.length;
    if (end && bytes[end - 1] === 10) { end -= 1; }
    var start = bytes.lastIndexOf(10, end - 1) + 1;
    var decoder = new TextDecoder('utf-8');
    var manifestText = decoder.decode(bytes.subarray(start, end));
    var manifest = JSON.parse(manifestText).manifest;
    var checks = [];
    var digest = await sha256Hex(bytes.subarray(0, start));
    checks.push([digest === manifest.sha256, 'SHA-256 of the ' + manifest.count + ' event lines ' +
      (digest === manifest.sha256 ? 'matches the manifest' : 'does NOT match the manifest') + ' (' + digest.slice(0, 16) + '…)']);
    var lines = decoder.decode(bytes.subarray(0, start)).split('\n').filter(Boolean);
    var prev = null;
    var bad = null;
    for (var i = 0; i < lines.length && !bad; i++) {
      var event = JSON.parse(lines[i]);
      var body = without(lines[i], 'hash', '[0-9a-f]{64}');
      if (body === null || await sha256Hex(new TextEncoder().encode(body)) !== event.hash) {
        bad = 'line ' + (i + 1) + ': event seq ' + event.seq + ' does not match its hash';
      } else if (prev === null && event.seq === 1 && event.prev_hash !== '0'.repeat(64)) {
        bad = 'line 1: the first event does not start from the genesis hash';
      } else if (prev !== null && event.seq === prev.seq + 1 && event.prev_hash !== prev.hash) {
        bad = 'line ' + (i + 1) + ': event seq ' + event.seq + ' does not link to seq ' + prev.seq;
      } else if (prev !== null && event.seq <= prev.seq) {
        bad = 'line ' + (i + 1) + ': seq ' + event.seq + ' comes after seq ' + prev.seq;
      }
      prev = event;
    }
    checks.push([!bad && lines.length === manifest.count && (!prev || prev.hash === manifest.chain_head),
      bad || ('hash chain: ' + lines.length + ' events, every hash and link holds, head ' +
        String(manifest.chain_head).slice(0, 16) + '…')]);
    var signed = without(manifestText.slice('{"manifest":'.length, -1), 'signature', '[A-Za-z0-9+/=]+');
    var key = await (await fetch('/v1/audit/public-key?key_id=' + encodeURIComponent(manifest.key_id))).json();
    var signatureOk = null;
    try {
      var der = base64Bytes(key.public_key_pem.replace(/-----[^-]+-----/g, ''));
      var publicKey = await crypto.subtle.importKey('spki', der, {name: 'Ed25519'}, false, ['verify']);
      signatureOk = signed !== null && await crypto.subtle.verify({name: 'Ed25519'}, publicKey,
        base64Bytes(manifest.signature), new TextEncoder().encode(signed));
    } catch (e) {
      signatureOk = null;
    }
    if (signatureOk === null) {
      checks.push([null, 'signature: this browser cannot verify Ed25519; verify offline with ' +
        'scripts/verify_audit_export.py']);
    } else {
      checks.push([signatureOk, 'Ed25519 signature by ' + manifest.key_id + (signatureOk ? ' is valid' : ' is NOT valid')]);
    }
    return checks;
  }

  async function exportAudit() {
    var box = $('export-result');
    clear(box);
    box.appendChild(el('p', {className: 'pending', text: 'Downloading…'}));
    var response = await api('/v1/audit/events');
    var buffer = await response.arrayBuffer();
    var bytes = new Uint8Array(buffer);
    if (exportUrl) { URL.revokeObjectURL(exportUrl); }
    exportUrl = URL.createObjectURL(new Blob([buffer], {type: 'application/x-ndjson'}));
    var checks = await verifyExport(bytes);
    clear(box);
    var allOk = checks.every(function (c) { return c[0] !== false; });
    box.appendChild(el('p', {id: 'verify-verdict', className: allOk ? 'ok' : 'fail',
      text: allOk ? 'Verified: the export is complete and untouched.' : 'Verification FAILED.'}));
    box.appendChild(el('ul', {className: 'checks', id: 'verify-checks'}, checks.map(function (c) {
      var mark = c[0] === true ? '✔ ' : c[0] === false ? '✘ ' : '… ';
      return el('li', {className: c[0] === false ? 'fail' : '', text: mark + c[1]});
    })));
    box.appendChild(el('a', {href: exportUrl, download: 'audit-export.ndjson', text: 'Save the export (' +
      Math.round(bytes.length / 1024) + ' KiB)'}));
    loadEvents().catch(function () { /* the export is audited; shown on the next refresh */ });
  }

  // -- Art. 30 report --------------------------------------------------------------------------

  async function loadReport() {
    var response = await api('/v1/reports/processing?format=html');
    var html = await response.text();
    if (reportUrl) { URL.revokeObjectURL(reportUrl); }
    reportUrl = URL.createObjectURL(new Blob([html], {type: 'text/html'}));
    $('report-frame').src = reportUrl;
    $('report-frame').hidden = false;
    $('report-open').href = reportUrl;
    $('report-open').hidden = false;
  }

  // -- wiring -------------------------------------------------------------------------------

  function init() {
    $('sign-in-form').addEventListener('submit', function (event) {
      signIn(event).catch(function (e) { $('sign-in-error').textContent = e.message; });
    });
    $('sign-out').addEventListener('click', function () { signOut(''); });
    $('events-filter').addEventListener('submit', guard('events-error', loadEvents));
    $('subject-form').addEventListener('submit', guard('subject-error', exportSubject));
    $('subject-erase').addEventListener('click', askErase);
    $('erase-dialog').addEventListener('close', function () {
      if ($('erase-dialog').returnValue === 'erase') { guard('subject-error', eraseConfirmed)(); }
      $('subject-erase').focus();
    });
    $('audit-export').addEventListener('click', guard('export-error', exportAudit));
    $('report-load').addEventListener('click', guard('report-error', loadReport));
    $('client-id').focus();
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
})();
