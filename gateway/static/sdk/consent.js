/*! Consent Gateway banner SDK: one script tag, no dependencies, plain ES2017.
 *
 *   <script src="https://consent.example/sdk/consent.js" defer
 *           data-gateway="https://consent.example" data-property-key="pk_..."></script>
 *
 * Optional attributes: data-subject-id (the site's own id for the visitor; otherwise a
 * random one is kept in localStorage "cg_subject"), data-locale (otherwise the page's
 * <html lang>), data-banner="false" (never show the built-in banner, e.g. when an
 * adapter forwards another banner's choices), data-settings-button="false" (no floating
 * "Privacy settings" button; put data-consent-open on an element of your own instead).
 *
 * Keyboard: the banner and the preference centre are modal dialogs; focus moves into
 * them, Tab stays inside, and focus returns where it was when they close. Escape closes
 * the preference centre and the explanation; the first-time banner stays until a choice
 * is made ("Reject all" is as close as "Accept all").
 *
 * window.ConsentGateway: ready (a promise), open(), close(), withdraw(), getReceipt(),
 * getState(), getSubjectId(), onChange(fn), explain(decisionId), setChoices(purposes),
 * adapters.vanillaCookieConsent(config, mapping), adapters.klaro(config, mapping).
 */
(function () {
  'use strict';

  if (window.ConsentGateway && window.ConsentGateway.version) {
    return; // loaded twice: keep the first
  }

  var VERSION = '1.0.0';
  var script = document.currentScript || document.querySelector('script[data-property-key]');
  var data = (script && script.dataset) || {};
  var scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var BASE = String(data.gateway || scriptOrigin).replace(/\/+$/, '');
  var KEY = data.propertyKey || '';
  var BANNER = data.banner !== 'false';
  var SETTINGS_BUTTON = data.settingsButton !== 'false';
  var STORE = {subject: 'cg_subject', receipt: 'cg_receipt', receiptData: 'cg_receipt_data'};
  var SETTABLE = {consent: true, legitimate_interest: true};

  var TEXTS = {
    en: {
      acceptAll: 'Accept all', rejectAll: 'Reject all', save: 'Save choices',
      settings: 'Privacy settings', why: 'Why am I seeing this?', close: 'Close',
      intro: '{controller} would like to use your data for the purposes below. Nothing is ' +
        'switched on until you choose. You can change or withdraw your choice at any time ' +
        'under \u201cPrivacy settings\u201d.',
      alwaysOn: 'Always on: needed to provide the service',
      object: 'Object (we rely on our legitimate interest)',
      gpc: 'Off: your browser sends a Global Privacy Control signal',
      saved: 'Your choice has been saved.',
      error: 'Your choice could not be saved. Please try again.',
      explainError: 'The explanation could not be loaded.'
    },
    de: {
      acceptAll: 'Alle akzeptieren', rejectAll: 'Alle ablehnen', save: 'Auswahl speichern',
      settings: 'Datenschutzeinstellungen', why: 'Warum sehe ich das?', close: 'Schlie\u00dfen',
      intro: '{controller} m\u00f6chte Ihre Daten f\u00fcr die folgenden Zwecke nutzen. Nichts ist ' +
        'eingeschaltet, bevor Sie w\u00e4hlen. Sie k\u00f6nnen Ihre Entscheidung jederzeit unter ' +
        '\u201eDatenschutzeinstellungen\u201c \u00e4ndern oder widerrufen.',
      alwaysOn: 'Immer aktiv: f\u00fcr den Dienst erforderlich',
      object: 'Widersprechen (wir st\u00fctzen uns auf unser berechtigtes Interesse)',
      gpc: 'Aus: Ihr Browser sendet ein Global-Privacy-Control-Signal',
      saved: 'Ihre Auswahl wurde gespeichert.',
      error: 'Ihre Auswahl konnte nicht gespeichert werden. Bitte versuchen Sie es erneut.',
      explainError: 'Die Erkl\u00e4rung konnte nicht geladen werden.'
    },
    nb: {
      acceptAll: 'Godta alle', rejectAll: 'Avvis alle', save: 'Lagre valgene',
      settings: 'Personverninnstillinger', why: 'Hvorfor ser jeg dette?', close: 'Lukk',
      intro: '{controller} vil gjerne bruke opplysningene dine til form\u00e5lene nedenfor. ' +
        'Ingenting er sl\u00e5tt p\u00e5 f\u00f8r du velger. Du kan endre eller trekke tilbake valget ' +
        'ditt n\u00e5r som helst under \u00abPersonverninnstillinger\u00bb.',
      alwaysOn: 'Alltid p\u00e5: n\u00f8dvendig for tjenesten',
      object: 'Protester (vi bygger p\u00e5 v\u00e5r berettigede interesse)',
      gpc: 'Av: nettleseren din sender et Global Privacy Control-signal',
      saved: 'Valget ditt er lagret.',
      error: 'Valget ditt kunne ikke lagres. Pr\u00f8v igjen.',
      explainError: 'Forklaringen kunne ikke lastes.'
    }
  };

  // -- small helpers ------------------------------------------------------------------------

  function storageGet(name) {
    try { return window.localStorage.getItem(name); } catch (e) { return null; }
  }

  function storageSet(name, value) {
    try { window.localStorage.setItem(name, value); } catch (e) { /* private mode: memory only */ }
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      return window.crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' +
      h.slice(20);
  }

  function language(raw) {
    var m = /^([A-Za-z]{2,3})/.exec(raw || '');
    return m ? m[1].toLowerCase() : 'en';
  }

  function pageLocale() {
    return language(data.locale || document.documentElement.lang || navigator.language);
  }

  function t() {
    return TEXTS[pageLocale()] || TEXTS.en;
  }

  function gpcOn() {
    return navigator.globalPrivacyControl === true;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) { return; }
      if (name === 'text') { node.textContent = value; } else if (name === 'className') {
        node.className = value;
      } else { node.setAttribute(name, value === true ? '' : String(value)); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function whenBody() {
    if (document.body) { return Promise.resolve(); }
    return new Promise(function (resolve) {
      document.addEventListener('DOMContentLoaded', function () { resolve(); }, {once: true});
    });
  }

  async function call(method, path, body, extraHeaders) {
    var headers = Object.assign({'X-Property-Key': KEY}, extraHeaders || {});
    var init = {method: method, headers: headers, credentials: 'omit', mode: 'cors'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var response = await fetch(BASE + path, init);
    var payload = null;
    try { payload = await response.json(); } catch (e) { payload = null; }
    if (!response.ok) {
      var err = new Error((payload && payload.detail) || ('HTTP ' + response.status));
      err.status = response.status;
      err.problem = payload;
      throw err;
    }
    return payload;
  }

  // -- state ----------------------------------------------------------------------------------

  function subjectId() {
    if (data.subjectId) { return data.subjectId; }
    var id = storageGet(STORE.subject);
    if (!id) {
      id = uuid();
      storageSet(STORE.subject, id);
    }
    return id;
  }

  var SUBJECT = subjectId();
  var state = {
    policy: null, policyLocale: null, consents: null, receipt: null, noticeId: null,
    external: !BANNER, listeners: [], error: null
  };
  try { state.receipt = JSON.parse(storageGet(STORE.receiptData) || 'null'); } catch (e) { state.receipt = null; }

  function settable(purpose) { return SETTABLE[purpose.legal_basis] === true; }
  function blockedByGpc(purpose) { return gpcOn() && purpose.gpc === true; }

  function statusOf(purposeId) {
    var list = (state.consents && state.consents.purposes) || [];
    for (var i = 0; i < list.length; i++) { if (list[i].purpose === purposeId) { return list[i]; } }
    return null;
  }

  function needsChoice() {
    if (!state.policy) { return false; }
    if (!state.consents) { return !storageGet(STORE.receipt); }
    return state.policy.purposes.some(function (p) {
      if (p.legal_basis !== 'consent') { return false; }
      var s = statusOf(p.id);
      return !s || s.status === 'not_asked' || s.status === 'expired' || s.status === 'reconsent_required';
    });
  }

  async function loadPolicy() {
    var locale = pageLocale();
    if (state.policy && state.policyLocale === locale) { return state.policy; }
    state.policy = await call('GET', '/v1/policy?locale=' + encodeURIComponent(locale));
    state.policyLocale = locale;
    return state.policy;
  }

  async function refreshState() {
    try {
      state.consents = await call('GET', '/v1/subjects/' + encodeURIComponent(SUBJECT) + '/consents');
    } catch (e) {
      state.consents = null;
    }
    return state.consents;
  }

  function updateGtag(consentMode) {
    if (consentMode && typeof window.gtag === 'function') {
      window.gtag('consent', 'update', Object.assign({}, consentMode));
    }
  }

  function emit(receipt) {
    state.listeners.slice().forEach(function (fn) {
      try { fn(receipt); } catch (e) { window.console && console.error(e); }
    });
    try {
      document.dispatchEvent(new CustomEvent('consentgateway:change', {detail: receipt}));
    } catch (e) { /* very old browsers */ }
  }

  async function applyReceipt(receipt) {
    state.receipt = {
      receipt_id: receipt.receipt_id, recorded_at: receipt.recorded_at,
      policy_version: receipt.policy_version, purposes: receipt.purposes,
      gpc_applied: receipt.gpc_applied, consent_mode: receipt.consent_mode
    };
    storageSet(STORE.receipt, receipt.receipt_id);
    storageSet(STORE.receiptData, JSON.stringify(state.receipt));
    updateGtag(receipt.consent_mode);
    await refreshState();
    renderSettingsButton();
    emit(state.receipt);
    return state.receipt;
  }

  async function setChoices(purposes, source) {
    await ready;
    var headers = {'Idempotency-Key': uuid()};
    // Browsers with GPC send Sec-GPC themselves (scripts may not set Sec- headers); where
    // they let us, we pass it on, and in any case the body denies every GPC purpose.
    if (gpcOn()) { headers['Sec-GPC'] = '1'; }
    var body = {
      subject_id: SUBJECT, purposes: purposes, locale: pageLocale(),
      source: {url: (location.origin + location.pathname).slice(0, 512), banner: source || 'consent.js'}
    };
    if (state.noticeId) { body.notice_id = state.noticeId; }
    var receipt = await call('POST', '/v1/consents', body, headers);
    state.noticeId = null;
    return applyReceipt(receipt);
  }

  async function withdraw() {
    await ready;
    var receipt = await call('DELETE', '/v1/subjects/' + encodeURIComponent(SUBJECT) + '/consents');
    return applyReceipt(receipt);
  }

  function serveNotice(purposeIds) {
    state.noticeId = null;
    return call('POST', '/v1/notices/served', {
      subject_id: SUBJECT, purposes: purposeIds, locale: pageLocale(),
      source: {url: (location.origin + location.pathname).slice(0, 512), banner: 'consent.js'}
    }).then(function (notice) { state.noticeId = notice.notice_id; }, function () { state.noticeId = null; });
  }

  // -- choices ----------------------------------------------------------------------------

  function allChoices(grant) {
    var out = {};
    state.policy.purposes.forEach(function (p) {
      if (!settable(p)) { return; }
      out[p.id] = grant && !blockedByGpc(p) ? 'granted' : 'denied';
    });
    return out;
  }

  function formChoices(dialog) {
    var out = {};
    state.policy.purposes.forEach(function (p) {
      if (!settable(p)) { return; }
      var box = dialog.querySelector('input[data-purpose="' + p.id + '"]');
      var ticked = !!(box && box.checked);
      if (p.legal_basis === 'legitimate_interest') {
        out[p.id] = ticked || blockedByGpc(p) ? 'denied' : 'granted'; // ticked = objection
      } else {
        out[p.id] = ticked && !blockedByGpc(p) ? 'granted' : 'denied';
      }
    });
    return out;
  }

  // -- dialogs ------------------------------------------------------------------------------

  var STYLE = [
    '.cg-root{position:fixed;inset:0;z-index:2147483000;display:flex;align-items:flex-end;',
    'justify-content:center;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b}',
    '.cg-backdrop{position:absolute;inset:0;background:rgba(10,20,30,.55)}',
    '.cg-dialog{position:relative;box-sizing:border-box;width:min(44rem,100%);max-height:94vh;display:flex;',
    'flex-direction:column;background:#fff;border-radius:.75rem .75rem 0 0;padding:1.25rem 1.5rem 1.25rem;',
    'box-shadow:0 -.5rem 2rem rgba(0,0,0,.25)}',
    '.cg-scroll{overflow:auto;min-height:4rem;flex:1 1 auto;margin:0 -.5rem;padding:0 .5rem}',
    '@media (min-width:48rem){.cg-root{align-items:center}.cg-dialog{border-radius:.75rem}}',
    '.cg-dialog h2{font-size:1.3rem;margin:0 0 .5rem;outline:none}',
    '.cg-dialog p{margin:.25rem 0 .75rem}',
    '.cg-purposes{list-style:none;margin:0 0 .5rem;padding:0;border-top:1px solid #d0d5dd}',
    '.cg-purpose{padding:.6rem 0;border-bottom:1px solid #d0d5dd}',
    '.cg-purpose label{display:flex;gap:.6rem;align-items:flex-start;font-weight:600;cursor:pointer}',
    '.cg-purpose input{width:1.25rem;height:1.25rem;margin:.15rem 0 0;flex:none;accent-color:#1d3557}',
    '.cg-purpose .cg-desc{font-size:.88rem;line-height:1.4;color:#3a3f47;margin:.15rem 0 0 1.85rem}',
    '.cg-purpose .cg-note{font-size:.85rem;color:#5b2a86;margin:.2rem 0 0 1.85rem;font-weight:600}',
    '.cg-actions{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.6rem;',
    'padding-top:.75rem;border-top:1px solid #d0d5dd;flex:none}',
    '.cg-btn{box-sizing:border-box;width:100%;min-height:2.9rem;padding:.6rem 1rem;font:inherit;',
    'font-weight:700;color:#fff;background:#1d3557;border:2px solid #1d3557;border-radius:.4rem;cursor:pointer}',
    '.cg-btn:hover{background:#14253d}',
    '.cg-root button:focus-visible,.cg-root input:focus-visible,.cg-settings:focus-visible,',
    '.cg-why:focus-visible{outline:3px solid #e76f51;outline-offset:2px}',
    '.cg-close{position:absolute;top:.75rem;right:.75rem;font:inherit;font-size:.9rem;background:#fff;',
    'color:#1d3557;border:2px solid #1d3557;border-radius:.4rem;padding:.2rem .6rem;cursor:pointer}',
    '.cg-error{color:#a4161a;font-weight:600;margin:.25rem 0}.cg-error:empty{display:none}',
    '.cg-details{padding-left:1.2rem;margin:.5rem 0 1rem}',
    '.cg-details li{margin:.25rem 0}',
    '.cg-settings{position:fixed;left:1rem;bottom:1rem;z-index:2147482999;font:600 14px/1.2 system-ui,',
    'sans-serif;color:#fff;background:#1d3557;border:2px solid #fff;border-radius:2rem;padding:.55rem 1rem;',
    'cursor:pointer;box-shadow:0 .25rem .75rem rgba(0,0,0,.3)}',
    '.cg-why{font:inherit;font-size:.9rem;background:none;border:none;padding:0;margin:.5rem 0 0;',
    'color:inherit;text-decoration:underline;cursor:pointer;display:inline-block}'
  ].join('');

  function injectStyle() {
    if (document.getElementById('cg-style')) { return; }
    var style = el('style', {id: 'cg-style'});
    // a page with a nonce-based Content-Security-Policy gives its nonce to this script tag
    if (script && script.nonce) { style.nonce = script.nonce; }
    style.textContent = STYLE;
    (document.head || document.documentElement).appendChild(style);
  }

  var open_ = null; // {root, dialog, closable, returnTo, onClose}

  function focusables(node) {
    return Array.prototype.filter.call(
      node.querySelectorAll('button, input, a[href], select, textarea, [tabindex]:not([tabindex="-1"])'),
      function (x) { return !x.disabled && x.offsetParent !== null; });
  }

  function onKey(event) {
    if (!open_) { return; }
    if (event.key === 'Escape') {
      if (open_.closable) { event.preventDefault(); closeDialog(); }
      return;
    }
    if (event.key !== 'Tab') { return; }
    var items = focusables(open_.dialog);
    if (!items.length) { event.preventDefault(); return; }
    var first = items[0];
    var last = items[items.length - 1];
    var inside = open_.dialog.contains(document.activeElement);
    if (event.shiftKey && (!inside || document.activeElement === first || document.activeElement === open_.heading)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (!inside || document.activeElement === last)) {
      event.preventDefault();
      first.focus();
    }
  }

  function onFocusIn(event) {
    if (open_ && !open_.root.contains(event.target)) {
      open_.heading.focus();
    }
  }

  function showDialog(dialog, heading, options) {
    closeDialog(true);
    injectStyle();
    var root = el('div', {className: 'cg-root', lang: pageLocale(), 'data-cg-root': true},
                  [el('div', {className: 'cg-backdrop'}), dialog]);
    var returnTo = options.returnTo || document.activeElement;
    document.body.appendChild(root);
    open_ = {root: root, dialog: dialog, heading: heading, closable: options.closable,
             returnTo: returnTo, kind: options.kind};
    document.addEventListener('keydown', onKey, true);
    document.addEventListener('focusin', onFocusIn, true);
    heading.focus();
    renderSettingsButton();
  }

  function closeDialog(silent) {
    if (!open_) { return; }
    var current = open_;
    open_ = null;
    document.removeEventListener('keydown', onKey, true);
    document.removeEventListener('focusin', onFocusIn, true);
    current.root.remove();
    renderSettingsButton();
    if (silent !== true) {
      var back = current.returnTo;
      if (back && document.contains(back) && typeof back.focus === 'function' && back !== document.body) {
        back.focus();
      } else if (settingsButton) {
        settingsButton.focus();
      }
    }
  }

  function purposeRow(p, mode) {
    var s = statusOf(p.id);
    var id = 'cg-p-' + p.id;
    var box = el('input', {type: 'checkbox', id: id, 'data-purpose': p.id, 'aria-describedby': id + '-d'});
    var label = [p.title];
    var note = null;
    if (!settable(p)) {
      box.checked = true;
      box.disabled = true;
      note = t().alwaysOn;
    } else if (blockedByGpc(p)) {
      box.checked = p.legal_basis === 'legitimate_interest';
      box.disabled = true;
      note = t().gpc;
    } else if (p.legal_basis === 'legitimate_interest') {
      label.push(' \u2014 ' + t().object);
      box.checked = mode === 'preferences' && !!s && s.status === 'objected';
    } else {
      // nothing pre-ticked: only the preference centre shows what was granted before
      box.checked = mode === 'preferences' && !!s && s.status === 'granted';
    }
    var text = el('span', {text: label.join('')});
    return el('li', {className: 'cg-purpose'}, [
      el('label', {for: id}, [box, text]),
      el('p', {className: 'cg-desc', id: id + '-d', text: p.description}),
      note ? el('p', {className: 'cg-note', text: note}) : null
    ]);
  }

  function consentDialog(mode) {
    var tx = t();
    var policy = state.policy;
    var heading = el('h2', {id: 'cg-title', tabindex: '-1', text: tx.settings});
    var intro = el('p', {id: 'cg-intro', text: tx.intro.replace('{controller}', policy.controller.name)});
    var list = el('ul', {className: 'cg-purposes'}, policy.purposes.map(function (p) {
      return purposeRow(p, mode);
    }));
    var error = el('p', {className: 'cg-error', role: 'alert'});
    var accept = el('button', {type: 'button', className: 'cg-btn', 'data-cg': 'accept', text: tx.acceptAll});
    var reject = el('button', {type: 'button', className: 'cg-btn', 'data-cg': 'reject', text: tx.rejectAll});
    var save = el('button', {type: 'button', className: 'cg-btn', 'data-cg': 'save', text: tx.save});
    var dialog = el('div', {
      className: 'cg-dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'cg-title',
      'aria-describedby': 'cg-intro', 'data-cg-mode': mode
    }, [heading, el('div', {className: 'cg-scroll'}, [intro, list, error]),
        el('div', {className: 'cg-actions'}, [accept, reject, save])]);
    if (mode === 'preferences') {
      dialog.appendChild(el('button', {type: 'button', className: 'cg-close', 'data-cg': 'close', text: tx.close}));
    }
    async function submit(choices) {
      [accept, reject, save].forEach(function (b) { b.disabled = true; });
      error.textContent = '';
      try {
        await setChoices(choices, 'consent.js');
        closeDialog();
      } catch (e) {
        error.textContent = tx.error;
        [accept, reject, save].forEach(function (b) { b.disabled = false; });
      }
    }
    dialog.addEventListener('click', function (event) {
      var action = event.target && event.target.getAttribute && event.target.getAttribute('data-cg');
      if (action === 'accept') { submit(allChoices(true)); }
      if (action === 'reject') { submit(allChoices(false)); }
      if (action === 'save') { submit(formChoices(dialog)); }
      if (action === 'close') { closeDialog(); }
    });
    return {dialog: dialog, heading: heading};
  }

  async function openPreferences(returnTo) {
    await ready;
    if (!state.policy) { return; }
    await loadPolicy();
    await refreshState();
    var built = consentDialog('preferences');
    showDialog(built.dialog, built.heading, {closable: true, returnTo: returnTo, kind: 'preferences'});
    serveNotice(state.policy.purposes.filter(settable).map(function (p) { return p.id; }));
  }

  function openBanner() {
    var built = consentDialog('banner');
    showDialog(built.dialog, built.heading, {closable: false, kind: 'banner'});
    serveNotice(state.policy.purposes.filter(settable).map(function (p) { return p.id; }));
  }

  // -- "why am I seeing this" ---------------------------------------------------------------

  async function explain(decisionId, returnTo) {
    var tx = t();
    var heading = el('h2', {id: 'cg-why-title', tabindex: '-1', text: tx.why});
    var body = el('div', {id: 'cg-why-body', className: 'cg-scroll'});
    var settingsLink = el('button', {type: 'button', className: 'cg-btn', 'data-cg': 'settings', text: tx.settings});
    var close = el('button', {type: 'button', className: 'cg-btn', 'data-cg': 'close', text: tx.close});
    var dialog = el('div', {
      className: 'cg-dialog cg-explanation', role: 'dialog', 'aria-modal': 'true',
      'aria-labelledby': 'cg-why-title', 'aria-describedby': 'cg-why-body'
    }, [heading, body, el('div', {className: 'cg-actions'}, [settingsLink, close])]);
    dialog.addEventListener('click', function (event) {
      var action = event.target && event.target.getAttribute && event.target.getAttribute('data-cg');
      if (action === 'close') { closeDialog(); }
      if (action === 'settings') {
        var back = open_ && open_.returnTo;
        closeDialog(true);
        openPreferences(back);
      }
    });
    showDialog(dialog, heading, {closable: true, returnTo: returnTo, kind: 'explanation'});
    try {
      var ex = await call('GET', '/v1/decisions/' + encodeURIComponent(decisionId) + '/explanation?locale=' +
                          encodeURIComponent(pageLocale()));
      if (ex.locale) { dialog.setAttribute('lang', ex.locale); }
      body.appendChild(el('p', {className: 'cg-summary', text: ex.summary}));
      if (ex.details && ex.details.length) {
        body.appendChild(el('ul', {className: 'cg-details'}, ex.details.map(function (line) {
          return el('li', {text: line});
        })));
      }
    } catch (e) {
      body.appendChild(el('p', {className: 'cg-error', role: 'alert', text: tx.explainError}));
    }
  }

  function decorate(node) {
    var id = node.getAttribute('data-decision-id');
    var own = Array.prototype.find.call(node.children, function (c) { return c.classList.contains('cg-why'); });
    if (node.tagName === 'A' || node.tagName === 'BUTTON') {
      if (!node.hasAttribute('data-cg-bound')) {
        node.setAttribute('data-cg-bound', '');
        node.addEventListener('click', function (event) {
          var current = node.getAttribute('data-decision-id');
          if (current) { event.preventDefault(); explain(current, node); }
        });
      }
      if (!node.textContent.trim()) { node.textContent = t().why; }
      return;
    }
    if (!id) {
      if (own) { own.remove(); }
      return;
    }
    if (!own) {
      own = el('button', {type: 'button', className: 'cg-why', text: t().why});
      own.addEventListener('click', function () {
        var current = node.getAttribute('data-decision-id');
        if (current) { explain(current, own); }
      });
      node.appendChild(own);
    } else if (own.textContent !== t().why) {
      own.textContent = t().why;
    }
  }

  function decorateAll() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-decision-id]'), decorate);
    Array.prototype.forEach.call(document.querySelectorAll('.cg-why'), function (link) {
      if (!link.parentElement || !link.parentElement.getAttribute('data-decision-id')) { link.remove(); }
    });
  }

  function watchDecisions() {
    decorateAll();
    var scheduled = false;
    new MutationObserver(function () {
      if (scheduled) { return; }
      scheduled = true;
      Promise.resolve().then(function () { scheduled = false; decorateAll(); });
    }).observe(document.body, {subtree: true, childList: true, attributes: true,
                               attributeFilter: ['data-decision-id']});
    document.addEventListener('click', function (event) {
      var opener = event.target && event.target.closest && event.target.closest('[data-consent-open]');
      if (opener) { event.preventDefault(); openPreferences(opener); }
    });
  }

  var settingsButton = null;

  function renderSettingsButton() {
    if (!SETTINGS_BUTTON || state.external || !state.policy || !document.body) { return; }
    if (!settingsButton) {
      settingsButton = el('button', {type: 'button', className: 'cg-settings', 'data-cg-settings': true});
      settingsButton.addEventListener('click', function () { openPreferences(settingsButton); });
      document.body.appendChild(settingsButton);
    }
    settingsButton.textContent = t().settings;
    settingsButton.hidden = !!open_;
  }

  // -- adapters for banners a site already runs -------------------------------------------

  function targets(value) { return Array.isArray(value) ? value : [value]; }

  function alreadyRecorded(purposes) {
    return !!state.consents && Object.keys(purposes).every(function (id) {
      var s = statusOf(id);
      if (!s) { return false; }
      if (purposes[id] === 'granted') { return s.status === 'granted' || s.status === 'permitted'; }
      return s.status === 'denied' || s.status === 'withdrawn' || s.status === 'objected';
    });
  }

  var forwarding = Promise.resolve();

  function forward(mapping, accepted, source) {
    // one at a time, so that a burst of callbacks records each change once
    var next = forwarding.then(function () { return forwardNow(mapping, accepted, source); });
    forwarding = next.catch(function () { return null; });
    return next;
  }

  async function forwardNow(mapping, accepted, source) {
    await ready;
    if (!state.policy) { return null; }
    var names = {};
    Object.keys(mapping || {}).forEach(function (name) {
      targets(mapping[name]).forEach(function (purpose) {
        (names[purpose] = names[purpose] || []).push(name);
      });
    });
    var purposes = {};
    state.policy.purposes.forEach(function (p) {
      if (!names[p.id] || !settable(p)) { return; }
      var granted = names[p.id].every(accepted) && !blockedByGpc(p);
      purposes[p.id] = granted ? 'granted' : 'denied';
    });
    if (!Object.keys(purposes).length || alreadyRecorded(purposes)) { return state.receipt; }
    return setChoices(purposes, source);
  }

  function takeOver() {
    state.external = true;
    if (open_ && open_.kind === 'banner') { closeDialog(true); }
    if (settingsButton) { settingsButton.remove(); settingsButton = null; }
  }

  function report(promise) {
    promise.catch(function (e) { window.console && console.warn('ConsentGateway: not forwarded:', e.message); });
  }

  // vanilla-cookieconsent v3: CookieConsent.run(ConsentGateway.adapters.vanillaCookieConsent(
  //   {categories: {...}, onConsent: ..., onChange: ...}, {analytics: 'analytics', marketing: 'ads'}))
  function vanillaCookieConsent(config, mapping) {
    config = config || {};
    mapping = mapping || (config.consentGateway && config.consentGateway.mapping) || {};
    takeOver();
    var out = Object.assign({}, config);
    delete out.consentGateway;
    function forwardCookie(arg) {
      var api = window.CookieConsent;
      var cookie = (arg && arg.cookie) || (api && typeof api.getCookie === 'function' ? api.getCookie() : {}) || {};
      var categories = cookie.categories || [];
      var services = cookie.services || {};
      report(forward(mapping, function (name) {
        if (categories.indexOf(name) >= 0) { return true; }
        return Object.keys(services).some(function (c) { return (services[c] || []).indexOf(name) >= 0; });
      }, 'vanilla-cookieconsent'));
    }
    ['onConsent', 'onChange'].forEach(function (hook) {
      var site = config[hook];
      out[hook] = function () {
        forwardCookie(arguments[0]);
        if (typeof site === 'function') { return site.apply(this, arguments); }
        return undefined;
      };
    });
    return out;
  }

  // Klaro: window.klaroConfig = ConsentGateway.adapters.klaro(klaroConfig, {'google-ads': 'ads'})
  function klaro(config, mapping) {
    config = config || {};
    mapping = mapping || (config.consentGateway && config.consentGateway.mapping) || {};
    takeOver();
    var out = Object.assign({}, config);
    delete out.consentGateway;
    var site = config.callback;
    var seen = {};
    var timer = null;
    function flush() {
      timer = null;
      var k = window.klaro;
      var manager = k && typeof k.getManager === 'function' ? k.getManager(out) : null;
      if (manager && manager.confirmed === false) { return; } // no choice made in Klaro yet
      report(forward(mapping, function (name) { return seen[name] === true; }, 'klaro'));
    }
    out.callback = function (consent, service) {
      if (service && service.name) { seen[service.name] = !!consent; }
      if (timer === null) { timer = setTimeout(flush, 0); }
      if (typeof site === 'function') { return site.apply(this, arguments); }
      return undefined;
    };
    return out;
  }

  // -- start ---------------------------------------------------------------------------------

  var resolveReady;
  var ready = new Promise(function (resolve) { resolveReady = resolve; });

  var api = {
    version: VERSION,
    ready: ready,
    open: function () { return openPreferences(document.activeElement); },
    close: function () { closeDialog(); },
    withdraw: withdraw,
    setChoices: function (purposes) { return setChoices(purposes, 'api'); },
    explain: function (decisionId) { return explain(decisionId, document.activeElement); },
    getReceipt: function () { return state.receipt ? JSON.parse(JSON.stringify(state.receipt)) : null; },
    getState: function () { return state.consents ? JSON.parse(JSON.stringify(state.consents)) : null; },
    getSubjectId: function () { return SUBJECT; },
    onChange: function (fn) {
      state.listeners.push(fn);
      return function () { state.listeners = state.listeners.filter(function (f) { return f !== fn; }); };
    },
    adapters: {vanillaCookieConsent: vanillaCookieConsent, klaro: klaro}
  };
  window.ConsentGateway = api;

  async function start() {
    try {
      if (!KEY) { throw new Error('the script tag needs data-property-key'); }
      await whenBody();
      await Promise.all([loadPolicy(), refreshState()]);
      if (state.consents && state.consents.purposes.some(function (p) { return p.receipt_id; })) {
        updateGtag(state.consents.consent_mode);
      }
      watchDecisions();
      renderSettingsButton();
      if (!state.external && needsChoice()) { openBanner(); }
    } catch (e) {
      state.error = e;
      api.error = e.message;
      if (window.console) { console.warn('ConsentGateway:', e.message); }
    }
    resolveReady(api);
  }

  start();
})();
