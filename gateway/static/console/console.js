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
    if (session.scopes.indexOf('webhooks:manage') >= 0) {
      guard('webhooks-error', loadWebhooks)();
    } else {
      $('webhooks-error').textContent = 'This client lacks webhooks:manage: no subscriptions or deliveries.';
    }
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
    clear($('webhooks-table').tBodies[0]);
    clear($('deliveries-table').tBodies[0]);
    $('deliveries-box').hidden = true;
    $('deliveries-title').hidden = true;
    $('webhooks-error').textContent = '';
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
  //
  // The checks of scripts/verify_audit_export.py, on the definitions of the export (README, "The
  // audit log"; openapi.yaml): an event's `hash` is the hex SHA-256 of the canonical JSON of the
  // event without `hash` (json.dumps(obj, sort_keys=True, separators=(",", ":"),
  // ensure_ascii=False) in UTF-8); the first event's `prev_hash` is 64 zeros and every next one is
  // the hash before it; an unfiltered export holds seq 1, 2, 3… with none missing; the manifest's
  // count, first/last seq, chain head and SHA-256 of every byte before it match the lines; and its
  // Ed25519 signature over the canonical JSON of the manifest without `signature` verifies with the
  // audit public key of its key_id. The export is called verified only when every one of these
  // holds, the signature included: a check that could not be made is never a pass.

  var GENESIS = '0'.repeat(64);
  var NEWLINE = 10;
  var STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return (b + 0x100).toString(16).slice(1); }).join('');
  }

  function base64Bytes(text) {
    if (typeof text !== 'string' || !STRICT_BASE64.test(text)) { throw new Error('not base64'); }
    var raw = atob(text);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  async function sha256Hex(bytes) { return hex(await crypto.subtle.digest('SHA-256', bytes)); }

  function short(hash) { return typeof hash === 'string' ? hash.slice(0, 16) + '…' : String(hash); }

  // -- canonical JSON, byte for byte as Python writes it

  // A JSON number with the text it was written as: JavaScript would spell 1.0 as "1" and round
  // integers above 2^53, Python keeps both.
  function RawNumber(value, source) { this.value = value; this.source = source; }

  function parseKeepingNumbers(text) {
    return JSON.parse(text, function (key, value, context) {
      if (typeof value !== 'number') { return value; }
      var source = context && typeof context.source === 'string' ? context.source : null;
      return new RawNumber(value, source);
    });
  }

  // repr() of a Python float, from JavaScript's shortest round-trip digits.
  function pythonFloat(x) {
    if (x === 0) { return Object.is(x, -0) ? '-0.0' : '0.0'; }
    var parts = Math.abs(x).toExponential().split('e');
    var digits = parts[0].replace('.', '');
    var exp = parseInt(parts[1], 10);
    var sign = x < 0 ? '-' : '';
    if (exp >= -4 && exp < 16) {
      if (exp >= digits.length - 1) { return sign + digits + '0'.repeat(exp - digits.length + 1) + '.0'; }
      if (exp >= 0) { return sign + digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1); }
      return sign + '0.' + '0'.repeat(-exp - 1) + digits;
    }
    var mantissa = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
    return sign + mantissa + 'e' + (exp < 0 ? '-' : '+') + (Math.abs(exp) < 10 ? '0' : '') + Math.abs(exp);
  }

  function pythonNumber(number) {
    var source = number.source;
    if (source === null) {  // a browser without JSON.parse source text: exact for safe integers only
      if (!Number.isSafeInteger(number.value)) { throw new Error('number not reproducible'); }
      return String(number.value);
    }
    if (/^-?(?:0|[1-9][0-9]*)$/.test(source)) { return source === '-0' ? '0' : source; }  // a Python int
    return pythonFloat(number.value);
  }

  // Python sorts keys by code point; JavaScript's default sort is by UTF-16 unit.
  function byCodePoint(a, b) {
    for (var i = 0; i < a.length && i < b.length;) {
      var x = a.codePointAt(i);
      var y = b.codePointAt(i);
      if (x !== y) { return x - y; }
      i += x > 0xffff ? 2 : 1;
    }
    return a.length - b.length;
  }

  // JSON.stringify escapes strings exactly as json.dumps(ensure_ascii=False) does.
  function canonical(value, omit) {
    if (value instanceof RawNumber) { return pythonNumber(value); }
    if (value === null || typeof value !== 'object') { return JSON.stringify(value); }
    if (Array.isArray(value)) { return '[' + value.map(function (v) { return canonical(v); }).join(',') + ']'; }
    return '{' + Object.keys(value).filter(function (k) { return k !== omit; }).sort(byCodePoint).map(function (k) {
      return JSON.stringify(k) + ':' + canonical(value[k]);
    }).join(',') + '}';
  }

  // Where a number cannot be rewritten here, the exact text of the line without its `hash`
  // member: the export's lines are canonical JSON already.
  function withoutMember(text, member) {
    var re = new RegExp(',"' + member + '":"[^"\\\\]*"', 'g');
    var found = text.match(re);
    return found && found.length === 1 ? text.replace(re, '') : null;
  }

  async function canonicalHash(text, omit) {
    var body;
    try {
      body = canonical(parseKeepingNumbers(text), omit);
    } catch (e) {
      body = withoutMember(text, omit);
      if (body === null) { return null; }
    }
    return sha256Hex(new TextEncoder().encode(body));
  }

  // -- the checks

  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

  function missingSeqs(from, to) {
    return from === to ? 'seq ' + from + ' is missing' : 'seq ' + from + ' to ' + to + ' are missing';
  }

  function splitLines(bytes) {
    var lines = [];
    var start = 0;
    while (start < bytes.length) {
      var end = bytes.indexOf(NEWLINE, start);
      var next = end < 0 ? bytes.length : end + 1;
      lines.push({start: start, end: end < 0 ? bytes.length : end, next: next});
      start = next;
    }
    return lines;
  }

  // Reads every line; returns the events' problems (the first bad line first), the manifest and
  // where it is. A gap is a problem only in an unfiltered export, which the console's is.
  async function checkLines(bytes) {
    var decoder = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true});
    var lines = splitLines(bytes);
    var problems = [];
    var gaps = [];
    var out = {count: 0, first: null, last: null, manifest: null, manifestLine: null, dataEnd: 0};
    var prev = null;
    for (var i = 0; i < lines.length; i++) {
      var number = i + 1;
      if (out.manifestLine !== null) { problems.push('line ' + number + ': data after the manifest line'); break; }
      var text;
      var obj;
      try {
        text = decoder.decode(bytes.subarray(lines[i].start, lines[i].end));
        obj = JSON.parse(text);
      } catch (e) {
        problems.push('line ' + number + ': not a JSON line');
        break;
      }
      if (isObject(obj) && Object.keys(obj).length === 1 && Object.prototype.hasOwnProperty.call(obj, 'manifest')) {
        out.manifest = obj.manifest;
        out.manifestLine = number;
        out.manifestText = text;
        out.dataEnd = lines[i].start;
        continue;
      }
      if (!isObject(obj) || !Number.isSafeInteger(obj.seq)) {
        problems.push('line ' + number + ': not an audit event (no integer seq)');
        break;
      }
      var seq = obj.seq;
      if (typeof obj.hash !== 'string' || await canonicalHash(text, 'hash') !== obj.hash) {
        problems.push('line ' + number + ': event seq ' + seq + ' does not match its hash (changed)');
      }
      if (prev === null) {
        out.first = seq;
        if (seq === 1 && obj.prev_hash !== GENESIS) {
          problems.push('line ' + number + ': the first event does not start from the genesis hash');
        } else if (seq > 1) {
          gaps.push('line ' + number + ': the export starts at seq ' + seq + ', not 1: ' + missingSeqs(1, seq - 1) +
            ' (removed)');
        } else if (seq < 1) {
          problems.push('line ' + number + ': seq ' + seq + ' is not a valid seq');
        }
      } else if (seq <= prev.seq) {
        problems.push('line ' + number + ': seq ' + seq + ' comes after seq ' + prev.seq + ' (reordered or inserted)');
      } else if (seq === prev.seq + 1) {
        if (obj.prev_hash !== prev.hash) {
          problems.push('line ' + number + ': event seq ' + seq + ' does not link to seq ' + prev.seq +
            ' (removed, inserted or reordered)');
        }
      } else {
        gaps.push('line ' + number + ': seq ' + seq + ' follows seq ' + prev.seq + ': ' +
          missingSeqs(prev.seq + 1, seq - 1) + ' (removed)');
      }
      prev = obj;
      out.count += 1;
    }
    if (out.manifestLine === null && !problems.length) {
      problems.push('line ' + (lines.length + 1) + ': no manifest line: the export is truncated');
      out.dataEnd = bytes.length;
    }
    out.last = prev;
    var filters = isObject(out.manifest) && isObject(out.manifest.filters) ? out.manifest.filters : {};
    var filtered = Object.keys(filters).some(function (k) {
      var v = filters[k];
      return !(v === null || (Array.isArray(v) && !v.length) || (isObject(v) && !Object.keys(v).length));
    });
    out.problems = (filtered ? problems : problems.concat(gaps)).sort(function (a, b) {
      return parseInt(a.slice(5), 10) - parseInt(b.slice(5), 10);
    });
    out.filtered = filtered;
    return out;
  }

  async function fetchPublicKey(keyId) {
    var response = await fetch('/v1/audit/public-key?key_id=' + encodeURIComponent(keyId), {credentials: 'omit'});
    if (response.status === 404) { return null; }
    if (!response.ok) { throw new Error('HTTP ' + response.status); }
    return response.json();
  }

  // [status, text] with status 'ok', 'fail' or 'unchecked'.
  async function checkSignature(manifest, manifestText, where) {
    var keyId = manifest.key_id;
    if (typeof manifest.signature !== 'string' || !manifest.signature) {
      return ['fail', where + 'the manifest has no signature'];
    }
    if (typeof keyId !== 'string' || !keyId) { return ['fail', where + 'the manifest names no signing key (key_id)']; }
    var signature;
    try { signature = base64Bytes(manifest.signature); } catch (e) {
      return ['fail', where + 'the manifest signature is not base64: the signature does not verify'];
    }
    var key;
    try { key = await fetchPublicKey(keyId); } catch (e) {
      return ['unchecked', 'signature not checked: the public key ' + keyId + ' could not be fetched (' + e.message + ')'];
    }
    if (!key || key.key_id !== keyId || key.algorithm !== 'Ed25519' || typeof key.public_key_pem !== 'string') {
      return ['fail', where + 'this gateway has no audit public key ' + keyId + ': the signature does not verify'];
    }
    var publicKey;
    try {
      var der = base64Bytes(key.public_key_pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''));
      publicKey = await crypto.subtle.importKey('spki', der, {name: 'Ed25519'}, false, ['verify']);
    } catch (e) {
      if (e && e.name === 'DataError') { return ['fail', where + 'the public key ' + keyId + ' is not an Ed25519 key']; }
      return ['unchecked', 'signature not checked: this browser cannot verify Ed25519 signatures (WebCrypto); ' +
        'save the export and verify it with scripts/verify_audit_export.py'];
    }
    var valid = false;
    try {
      var signed = new TextEncoder().encode(canonical(parseKeepingNumbers(manifestText).manifest, 'signature'));
      valid = await crypto.subtle.verify({name: 'Ed25519'}, publicKey, signature, signed);
    } catch (e) {
      valid = false;
    }
    return valid ? ['ok', 'Ed25519 signature by ' + keyId + ' is valid'] :
      ['fail', where + 'the Ed25519 signature by ' + keyId + ' does NOT verify: the manifest was changed or ' +
        'not signed with this key'];
  }

  function checkManifest(result, where) {
    var m = result.manifest;
    var last = result.last;
    var head = last ? last.hash : null;
    var expected = [
      ['count', result.count, function (said) { return said + ' but the export has ' + result.count + ' events'; }],
      ['first_seq', result.first, function (said) { return said + ' but the first event\'s seq is ' + result.first; }],
      ['last_seq', last ? last.seq : null, function (said) {
        return said + ' but the last event\'s seq is ' + (last ? last.seq : null);
      }],
      ['chain_head', head, function (said) { return said + ' but the last event\'s hash is ' + short(head); }]
    ];
    for (var i = 0; i < expected.length; i++) {
      var name = expected[i][0];
      if (m[name] !== expected[i][1]) {
        var said = 'manifest ' + name + ' is ' + (name === 'chain_head' ? short(m[name]) : JSON.stringify(m[name]));
        return ['fail', where + expected[i][2](said)];
      }
    }
    return ['ok', 'manifest: count ' + result.count + ', seq ' + result.first + '..' + (last ? last.seq : null) +
      ' and chain head ' + short(head) + ' match the lines'];
  }

  // Every check as {name, status, text}; the verdict is the first failure, if any.
  async function verifyExport(bytes) {
    if (!window.crypto || !crypto.subtle) {
      return [{name: 'webcrypto', status: 'unchecked', text: 'nothing checked: this page has no WebCrypto ' +
        '(it needs HTTPS); save the export and verify it with scripts/verify_audit_export.py'}];
    }
    var result = await checkLines(bytes);
    var checks = [];
    var firstProblem = result.problems[0];
    var more = result.problems.length > 1 ? ' (and ' + (result.problems.length - 1) + ' more problems)' : '';
    checks.push({name: 'events', status: firstProblem ? 'fail' : 'ok', text: firstProblem ? firstProblem + more :
      'hash chain: ' + result.count + ' events, every hash and link holds' +
      (result.filtered ? ' (a filtered export: gaps between its seqs are expected)' : ', no seq missing')});
    var manifest = result.manifest;
    var where = 'line ' + result.manifestLine + ' (the manifest): ';
    if (!isObject(manifest)) {
      var missing = result.manifestLine === null ? 'no manifest line: the export is truncated' :
        where + 'the manifest is not an object';
      checks.push({name: 'signature', status: 'fail', text: 'signature: ' + missing});
      checks.push({name: 'manifest', status: 'fail', text: 'manifest: ' + missing});
      return checks;
    }
    var signature = await checkSignature(manifest, result.manifestText, where);
    checks.push({name: 'signature', status: signature[0], text: signature[1]});
    var fields = checkManifest(result, where);
    checks.push({name: 'manifest', status: fields[0], text: fields[1]});
    var digest = await sha256Hex(bytes.subarray(0, result.dataEnd));
    var digestOk = digest === manifest.sha256;
    checks.push({name: 'sha256', status: digestOk ? 'ok' : 'fail', text: (digestOk ? '' : where) +
      'SHA-256 of the ' + result.count + ' event lines ' + (digestOk ? 'matches the manifest' :
      'does NOT match the manifest') + ' (' + short(digest) + ')'});
    return checks;
  }

  function verdictOf(checks) {
    var failed = checks.filter(function (c) { return c.status === 'fail'; })[0];
    if (failed) { return {state: 'failed', className: 'fail', text: 'Verification FAILED: ' + failed.text + '.'}; }
    var unchecked = checks.filter(function (c) { return c.status !== 'ok'; })[0];
    if (unchecked) { return {state: 'unchecked', className: 'warn', text: 'NOT verified: ' + unchecked.text + '.'}; }
    return {state: 'verified', className: 'ok', text: 'Verified: the export is complete and untouched.'};
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
    var checks;
    try {
      checks = await verifyExport(bytes);
    } catch (e) {
      checks = [{name: 'error', status: 'unchecked', text: 'the check stopped (' + e.message + '); save the export ' +
        'and verify it with scripts/verify_audit_export.py'}];
    }
    var verdict = verdictOf(checks);
    clear(box);
    box.appendChild(el('p', {id: 'verify-verdict', className: verdict.className, 'data-verdict': verdict.state,
      text: verdict.text}));
    var MARKS = {ok: '✔ ', fail: '✘ ', unchecked: '? '};
    box.appendChild(el('ul', {className: 'checks', id: 'verify-checks'}, checks.map(function (c) {
      return el('li', {className: c.status === 'ok' ? '' : c.status === 'fail' ? 'fail' : 'warn',
        'data-check': c.name, 'data-status': c.status, text: MARKS[c.status] + c.text});
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

  // -- webhooks ------------------------------------------------------------------------------

  var shownWebhook = null;

  function cell(text, className) { return el('td', {text: text === null || text === undefined ? '—' : String(text), className: className || ''}); }

  async function loadWebhooks() {
    var result = await apiJson('/v1/webhooks');
    var body = $('webhooks-table').tBodies[0];
    clear(body);
    if (!result.webhooks.length) {
      body.appendChild(el('tr', {}, [el('td', {colspan: '8', className: 'pending', text: 'No subscription yet.'})]));
    }
    result.webhooks.forEach(function (w) {
      var counts = w.deliveries || {};
      var show = el('button', {type: 'button', className: 'secondary', 'data-webhook': w.webhook_id,
                               text: 'Deliveries'});
      show.addEventListener('click', function () { shownWebhook = w; guard('webhooks-error', loadDeliveries)(); });
      var status = w.status + (w.disabled_reason ? ' (' + w.disabled_reason + ')' : '');
      body.appendChild(el('tr', {'data-webhook': w.webhook_id}, [
        el('td', {}, [el('strong', {text: w.description || w.url}), el('br'), el('small', {className: 'mono', text: w.url})]),
        cell(w.events.join(', ')), cell(w.purposes ? w.purposes.join(', ') : 'all'),
        cell(status, w.status === 'active' ? (w.failing_since ? 'warn' : 'ok') : 'fail'),
        cell(counts.delivered), cell((counts.pending || 0) + (counts.retrying || 0)),
        cell(counts.failed, counts.failed ? 'fail' : ''), el('td', {}, [show])
      ]));
    });
  }

  async function loadDeliveries() {
    if (!shownWebhook) { return; }
    var result = await apiJson('/v1/webhooks/' + encodeURIComponent(shownWebhook.webhook_id) + '/deliveries?limit=200');
    $('deliveries-title').textContent = 'Deliveries to ' + (shownWebhook.description || shownWebhook.url) + ' (failed first)';
    $('deliveries-title').hidden = false;
    $('deliveries-box').hidden = false;
    var body = $('deliveries-table').tBodies[0];
    clear(body);
    if (!result.deliveries.length) {
      body.appendChild(el('tr', {}, [el('td', {colspan: '8', className: 'pending', text: 'No delivery yet.'})]));
    }
    result.deliveries.forEach(function (d) {
      var action = el('td', {});
      if (d.retryable) {
        var retry = el('button', {type: 'button', 'data-delivery': d.delivery_id, text: 'Retry'});
        retry.addEventListener('click', guard('webhooks-error', async function () {
          retry.disabled = true;
          await apiJson('/v1/webhooks/' + encodeURIComponent(d.webhook_id) + '/deliveries/' +
                        encodeURIComponent(d.delivery_id) + '/retry', {method: 'POST'});
          await loadDeliveries();
          await loadWebhooks();
        }));
        action.appendChild(retry);
      }
      body.appendChild(el('tr', {'data-delivery': d.delivery_id, 'data-status': d.status}, [
        cell(d.status, d.status === 'failed' ? 'fail' : d.status === 'delivered' ? 'ok' : 'warn'),
        cell(d.event_type), cell(d.occurred_at), cell(d.attempts),
        cell(d.response_status !== null ? d.response_status : d.error),
        cell(d.latency_ms !== null ? d.latency_ms + ' ms' : null), cell(d.next_attempt_at), action
      ]));
    });
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
