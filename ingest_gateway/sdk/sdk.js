/*
 * Pulseline browser SDK: errors, page views, clicks, web vitals and the page-load time.
 *
 *   <script src="https://gw.example/sdk.js" data-key="pl_ingest_..."
 *           data-endpoint="https://gw.example" data-dnt="respect"></script>
 *
 * Events are batched and posted to <endpoint>/v1/events?key=<key> as a text/plain
 * body (sendBeacon, else fetch keepalive in no-cors mode): a "simple" request, so no
 * CORS preflight is needed from any origin. Plain ES2017, no build step.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.pulseline) return;
  var key = script.getAttribute('data-key');
  var base = (script.getAttribute('data-endpoint') || new URL(script.src).origin).replace(/\/+$/, '');
  var release = script.getAttribute('data-release') || undefined;
  var environment = script.getAttribute('data-environment') || undefined;
  var noop = function () {};
  if (!key || (script.getAttribute('data-dnt') === 'respect' && navigator.doNotTrack === '1')) {
    window.pulseline = { track: noop, captureException: noop, pageview: noop, flush: noop };
    return;
  }

  var URL_TO = base + '/v1/events?key=' + encodeURIComponent(key);
  var FLUSH_MS = 5000;
  var BATCH = 20;
  var SESSION_IDLE_MS = 30 * 60 * 1000;
  var queue = [];
  var memory = {};

  function load(name) {
    try { return localStorage.getItem(name); } catch (e) { return memory[name] || null; }
  }
  function save(name, value) {
    try { localStorage.setItem(name, value); } catch (e) { memory[name] = value; }
  }
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function cut(text, max) {
    return text == null ? undefined : String(text).slice(0, max);
  }

  var distinctId = load('pl_did');
  if (!distinctId) save('pl_did', (distinctId = uuid()));

  /* The session is shared by the tabs of a visitor and ends after 30 idle minutes. */
  function sessionId(now) {
    var parts = (load('pl_sid') || '').split('|');
    var id = parts[0];
    if (!id || now - Number(parts[1]) > SESSION_IDLE_MS) id = uuid();
    save('pl_sid', id + '|' + now);
    return id;
  }

  function send(kind, attributes) {
    var now = Date.now();
    queue.push({
      kind: kind,
      timestamp: new Date(now).toISOString(),
      distinct_id: distinctId,
      session_id: sessionId(now),
      release: release,
      environment: environment,
      attributes: attributes
    });
    if (queue.length >= BATCH) flush();
  }

  function flush() {
    if (!queue.length) return;
    var body = JSON.stringify(queue.splice(0, queue.length));
    var sent = false;
    try {
      sent = navigator.sendBeacon && navigator.sendBeacon(URL_TO, new Blob([body], { type: 'text/plain' }));
    } catch (e) { /* a beacon over the browser's quota throws in some browsers */ }
    if (!sent && window.fetch) {
      fetch(URL_TO, {
        method: 'POST', body: body, keepalive: true, mode: 'no-cors',
        headers: { 'Content-Type': 'text/plain' }
      }).catch(noop);
    }
  }
  setInterval(flush, FLUSH_MS);

  /* ---- errors ---- */
  var CHROME = /^\s*at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?\s*$/;
  var GECKO = /^\s*(.*?)@(.+?):(\d+):(\d+)\s*$/;

  function frames(stack) {
    var out = [];
    String(stack || '').split('\n').forEach(function (line) {
      var m = CHROME.exec(line) || GECKO.exec(line);
      if (!m) return;
      out.push({
        filename: cut(m[2], 8192),
        function: cut(m[1] || '?', 200),
        lineno: +m[3],
        colno: +m[4],
        in_app: m[2].indexOf(location.origin) === 0
      });
    });
    return out.reverse().slice(-250); /* Sentry's order: the crashing frame last */
  }

  function exception(err, mechanism, fallbackType) {
    var isError = err && typeof err === 'object' && 'message' in err;
    var value = {
      type: cut(isError ? err.name || 'Error' : fallbackType, 200),
      value: cut(isError ? err.message : typeof err === 'string' ? err : safeJson(err), 8192),
      mechanism: mechanism
    };
    var parsed = isError ? frames(err.stack) : [];
    if (parsed.length) value.stacktrace = { frames: parsed };
    return value;
  }
  function safeJson(value) {
    try { return JSON.stringify(value); } catch (e) { return String(value); }
  }
  function sendError(value) {
    send('error', {
      exception: [value], level: 'error', platform: 'javascript', url: cut(location.href, 8192)
    });
  }

  window.addEventListener('error', function (e) {
    if (!(e instanceof ErrorEvent)) return; /* a failed <img> or <script> load */
    var value = exception(e.error || e.message, { type: 'onerror', handled: false }, 'Error');
    if (!value.stacktrace && e.filename) {
      value.stacktrace = { frames: [{
        filename: e.filename, function: '?', lineno: e.lineno, colno: e.colno,
        in_app: e.filename.indexOf(location.origin) === 0
      }] };
    }
    sendError(value);
  });
  window.addEventListener('unhandledrejection', function (e) {
    sendError(exception(e.reason, { type: 'onunhandledrejection', handled: false }, 'UnhandledRejection'));
  });

  /* ---- page views, SPA navigation included ---- */
  var lastUrl = null;
  var referrer = document.referrer;

  function pageview() {
    var href = location.href;
    var params = new URLSearchParams(location.search);
    var attributes = {
      url: cut(href, 8192),
      path: cut(location.pathname, 8192),
      referrer: cut(lastUrl || referrer, 8192) || undefined,
      title: cut(document.title, 1000),
      screen: screen.width + 'x' + screen.height
    };
    ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (name) {
      var value = params.get('utm_' + name);
      if (value) attributes['utm_' + name] = cut(value, 200);
    });
    lastUrl = href;
    send('pageview', attributes);
  }
  function onNavigate() {
    if (location.href !== lastUrl) pageview();
  }
  ['pushState', 'replaceState'].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      onNavigate();
      return result;
    };
  });
  window.addEventListener('popstate', onNavigate);

  /* ---- clicks ---- */
  var CLICKABLE = 'a,button,input,select,textarea,label,summary,[role=button],[onclick],[data-pl-track]';

  function selector(el) {
    var parts = [];
    for (var depth = 0; el && el.nodeType === 1 && depth < 4; depth++, el = el.parentElement) {
      if (el.id) { parts.unshift('#' + el.id); break; }
      var classes = typeof el.className === 'string' ? el.className.trim().split(/\s+/).slice(0, 2) : [];
      parts.unshift(el.tagName.toLowerCase() + (classes[0] ? '.' + classes.join('.') : ''));
    }
    return parts.join(' > ');
  }

  document.addEventListener('click', function (e) {
    var target = e.target;
    if (!target || !target.closest) return;
    var el = target.closest(CLICKABLE) || target;
    var tag = el.tagName.toLowerCase();
    /* Never read what a visitor typed. */
    var text = /^(input|textarea|select)$/.test(tag) ? '' : (el.innerText || el.textContent || '');
    send('event', {
      name: 'click',
      properties: {
        selector: cut(selector(el), 200),
        text: cut(text.replace(/\s+/g, ' ').trim(), 100),
        href: el.href ? cut(el.href, 8192) : undefined,
        tag: tag
      }
    });
  }, true);

  /* ---- web vitals (thresholds from web.dev) ---- */
  var THRESHOLDS = { LCP: [2500, 4000], INP: [200, 500], CLS: [0.1, 0.25], FCP: [1800, 3000], TTFB: [800, 1800] };

  function vital(name, value) {
    var t = THRESHOLDS[name];
    send('web_vital', {
      name: name,
      value: Math.max(0, Math.round(value * 10000) / 10000),
      rating: value <= t[0] ? 'good' : value <= t[1] ? 'needs-improvement' : 'poor',
      url: cut(location.href, 8192),
      path: cut(location.pathname, 8192)
    });
  }
  function observe(type, callback, options) {
    try {
      var observer = new PerformanceObserver(function (list) { list.getEntries().forEach(callback); });
      observer.observe(Object.assign({ type: type, buffered: true }, options));
    } catch (e) { /* the browser does not know this entry type */ }
  }

  var lcp = null;
  var cls = 0;
  var clsWindow = 0;
  var clsFirst = 0;
  var clsLast = 0;
  var interactions = {};
  var finalSent = false;

  observe('paint', function (entry) {
    if (entry.name === 'first-contentful-paint') vital('FCP', entry.startTime);
  });
  observe('largest-contentful-paint', function (entry) { lcp = entry.startTime; });
  observe('layout-shift', function (entry) {
    if (entry.hadRecentInput) return;
    /* Session windows: shifts less than 1 s apart, at most 5 s long; CLS is the worst. */
    if (clsWindow && entry.startTime - clsLast < 1000 && entry.startTime - clsFirst < 5000) {
      clsWindow += entry.value;
    } else {
      clsWindow = entry.value;
      clsFirst = entry.startTime;
    }
    clsLast = entry.startTime;
    cls = Math.max(cls, clsWindow);
  });
  function interaction(entry) {
    if (!entry.interactionId) return;
    interactions[entry.interactionId] = Math.max(interactions[entry.interactionId] || 0, entry.duration);
  }
  observe('event', interaction, { durationThreshold: 40 });
  observe('first-input', interaction);

  /* INP: the worst interaction, ignoring one per 50 (about the 98th percentile). */
  function inp() {
    var durations = Object.keys(interactions).map(function (id) { return interactions[id]; })
      .sort(function (a, b) { return b - a; });
    return durations.length ? durations[Math.min(durations.length - 1, Math.floor(durations.length / 50))] : null;
  }

  function finalVitals() {
    if (finalSent) return;
    finalSent = true;
    if (lcp !== null) vital('LCP', lcp);
    vital('CLS', cls);
    var worst = inp();
    if (worst !== null) vital('INP', worst);
  }

  /* ---- page load: TTFB and a "pageload" transaction from navigation timing ---- */
  function pageload() {
    var nav = performance.getEntriesByType('navigation')[0];
    if (!nav) return;
    vital('TTFB', Math.max(0, nav.responseStart));
    send('transaction', {
      name: cut(location.pathname, 200) || '/',
      op: 'pageload',
      status: 'ok',
      start: new Date(performance.timeOrigin).toISOString(),
      duration_ms: Math.max(0, nav.loadEventEnd || nav.duration || 0),
      url: cut(location.href, 8192)
    });
  }
  function afterLoad() { setTimeout(pageload, 0); }
  if (document.readyState === 'complete') afterLoad();
  else window.addEventListener('load', afterLoad);

  /* ---- leaving: the last chance to send ---- */
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') {
      finalVitals();
      flush();
    }
  });
  window.addEventListener('pagehide', function () {
    finalVitals();
    flush();
  });

  window.pulseline = {
    track: function (name, props) { send('event', { name: cut(name, 200), properties: props || {} }); },
    captureException: function (err) { sendError(exception(err, { type: 'generic', handled: true }, 'Error')); },
    pageview: pageview,
    flush: flush
  };
  pageview();
})();
