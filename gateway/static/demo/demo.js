/* The demo shop's own script (not part of the SDK): texts, the hero, the interest buttons.
 *
 * It runs before the SDK and gives the visitor an id in the demo's namespace (`demo-…`),
 * which the SDK then finds in localStorage ("cg_subject"). The demo routes of the gateway
 * act on such ids only.
 */
(function () {
  'use strict';

  var STORE = 'cg_subject';
  try {
    var existing = window.localStorage.getItem(STORE);
    if (!existing || existing.indexOf('demo-') !== 0) {
      var id = window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID()
        : String(Date.now()) + '-' + Math.random().toString(16).slice(2);
      window.localStorage.setItem(STORE, 'demo-' + id);
    }
  } catch (e) { /* no storage: the SDK makes a fresh id, and the demo routes refuse it */ }

  var TEXT = {
    en: {
      settings: 'Privacy settings',
      tryTitle: 'Try it',
      tryText: 'The banner decides whether the hero above may use what you browsed. Tell the shop ' +
        'that you like outdoor products, give or withdraw consent, and ask the hero why it shows what ' +
        'it shows.',
      likeOutdoor: 'I like outdoor', forget: 'Forget my interests',
      liked: 'Noted: you like outdoor products.', forgotten: 'Your interests are forgotten.',
      failed: 'That did not work. Is the gateway running?',
      products: 'Popular this week',
      product1: 'Rain jacket \u201cFjord\u201d', product2: 'Hiking boots \u201cGrat\u201d',
      product3: 'Enamel mug', product4: 'Wool jumper',
      footer: 'A demo of Consent Gateway. Nothing here is sold; your choices are recorded with a receipt.',
      visitor: 'Your visitor id:',
      personalized: 'Picked for you', generic: 'The same for everyone',
      hero: {
        'generic-hero': ['Autumn collection', 'Warm layers, good shoes, fair prices.'],
        'outdoor-jackets': ['Outdoor jackets for wind and rain', 'Windproof, waterproof, made to last.'],
        'loyalty-lounge': ['Welcome to the regulars\u2019 lounge', 'Early access and free delivery for you.'],
        'welcome-back': ['Welcome back!', 'Good to see you again.']
      }
    },
    de: {
      settings: 'Datenschutzeinstellungen',
      tryTitle: 'Ausprobieren',
      tryText: 'Das Banner entscheidet, ob die Titelfl\u00e4che oben nutzen darf, was Sie angesehen haben. ' +
        'Sagen Sie dem Shop, dass Sie Outdoor-Produkte m\u00f6gen, erteilen oder widerrufen Sie Ihre ' +
        'Einwilligung und fragen Sie die Titelfl\u00e4che, warum sie zeigt, was sie zeigt.',
      likeOutdoor: 'Ich mag Outdoor', forget: 'Meine Interessen vergessen',
      liked: 'Notiert: Sie m\u00f6gen Outdoor-Produkte.', forgotten: 'Ihre Interessen sind vergessen.',
      failed: 'Das hat nicht geklappt. L\u00e4uft das Gateway?',
      products: 'Beliebt diese Woche',
      product1: 'Regenjacke \u201eFjord\u201c', product2: 'Wanderschuhe \u201eGrat\u201c',
      product3: 'Emaille-Becher', product4: 'Wollpullover',
      footer: 'Eine Demo von Consent Gateway. Hier wird nichts verkauft; Ihre Entscheidungen werden ' +
        'mit Beleg gespeichert.',
      visitor: 'Ihre Besucherkennung:',
      personalized: 'F\u00fcr Sie ausgew\u00e4hlt', generic: 'F\u00fcr alle gleich',
      hero: {
        'generic-hero': ['Herbstkollektion', 'Warme Schichten, gute Schuhe, faire Preise.'],
        'outdoor-jackets': ['Outdoor-Jacken f\u00fcr Wind und Wetter', 'Winddicht, wasserdicht, langlebig.'],
        'loyalty-lounge': ['Willkommen in der Stammkunden-Lounge', 'Fr\u00fcher Zugang und kostenlose Lieferung.'],
        'welcome-back': ['Willkommen zur\u00fcck!', 'Sch\u00f6n, Sie wiederzusehen.']
      }
    },
    nb: {
      settings: 'Personverninnstillinger',
      tryTitle: 'Pr\u00f8v selv',
      tryText: 'Banneret avgj\u00f8r om toppfeltet over kan bruke det du har sett p\u00e5. Si til butikken ' +
        'at du liker friluftsprodukter, gi eller trekk tilbake samtykke, og sp\u00f8r toppfeltet hvorfor ' +
        'det viser det det viser.',
      likeOutdoor: 'Jeg liker friluft', forget: 'Glem interessene mine',
      liked: 'Notert: du liker friluftsprodukter.', forgotten: 'Interessene dine er glemt.',
      failed: 'Det virket ikke. Kj\u00f8rer gatewayen?',
      products: 'Popul\u00e6rt denne uken',
      product1: 'Regnjakke \u00abFjord\u00bb', product2: 'Tursko \u00abGrat\u00bb',
      product3: 'Emaljekopp', product4: 'Ullgenser',
      footer: 'En demo av Consent Gateway. Ingenting selges her; valgene dine lagres med kvittering.',
      visitor: 'Din bes\u00f8ks-ID:',
      personalized: 'Valgt for deg', generic: 'Likt for alle',
      hero: {
        'generic-hero': ['H\u00f8stkolleksjonen', 'Varme lag, gode sko, rimelige priser.'],
        'outdoor-jackets': ['Friluftsjakker for vind og regn', 'Vindtette, vanntette, laget for \u00e5 vare.'],
        'loyalty-lounge': ['Velkommen til stamkundeloungen', 'Tidlig tilgang og gratis levering.'],
        'welcome-back': ['Velkommen tilbake!', 'Hyggelig \u00e5 se deg igjen.']
      }
    }
  };

  var lang = (document.documentElement.lang || 'en').slice(0, 2);
  var tx = TEXT[lang] || TEXT.en;
  var heroRequest = 0;

  function $(id) { return document.getElementById(id); }

  async function post(path, body) {
    var response = await fetch(path, {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)
    });
    if (!response.ok) { throw new Error('HTTP ' + response.status); }
    return response.json();
  }

  async function loadHero() {
    var cg = window.ConsentGateway;
    var mine = ++heroRequest;
    var decision = await post('/demo/hero', {subject_id: cg.getSubjectId(), locale: lang});
    if (mine !== heroRequest) { return; } // a newer answer is on its way
    var hero = $('hero');
    var text = tx.hero[decision.content.id] || [decision.content.id, ''];
    $('hero-title').textContent = text[0];
    $('hero-body').textContent = text[1];
    $('hero-badge').textContent = decision.personalized ? tx.personalized : tx.generic;
    hero.setAttribute('data-content-id', decision.content.id);
    hero.setAttribute('data-personalized', String(decision.personalized));
    hero.classList.toggle('is-personalized', decision.personalized);
    hero.setAttribute('data-decision-id', decision.decision_id); // the SDK adds "Why am I seeing this?"
  }

  async function setInterests(categories, message) {
    var status = $('demo-status');
    try {
      await post('/demo/profile', {subject_id: window.ConsentGateway.getSubjectId(),
                                   browsing_categories: categories});
      status.textContent = message;
      await loadHero();
    } catch (e) {
      status.textContent = tx.failed;
    }
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-i18n]'), function (node) {
      node.textContent = tx[node.getAttribute('data-i18n')] || '';
    });
    var cg = window.ConsentGateway;
    if (!cg) {
      $('demo-status').textContent = tx.failed;
      return;
    }
    cg.ready.then(function () {
      $('visitor-id').textContent = cg.getSubjectId();
      cg.onChange(function () { loadHero().catch(function () { $('demo-status').textContent = tx.failed; }); });
      return loadHero();
    }).catch(function () { $('demo-status').textContent = tx.failed; });
    $('like-outdoor').addEventListener('click', function () { setInterests(['outdoor'], tx.liked); });
    $('forget-interests').addEventListener('click', function () { setInterests(null, tx.forgotten); });
  }

  // This script runs before the SDK (both deferred): start once every deferred script has run.
  if (document.readyState === 'complete' || window.ConsentGateway) {
    init();
  } else {
    document.addEventListener('DOMContentLoaded', init);
  }
})();
