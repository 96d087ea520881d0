/* feedback-asgi widget: thumbs, comment, correction and stars under AI answers.
 No dependency, no inline code (fine under script-src 'self'; style-src 'self'). */
(() => {
"use strict";
if (window.FeedbackWidget) return;
var me = document.currentScript;
var base = ((me && (me.dataset.endpoint || me.src.replace(/\/widget\.js([?#].*)?$/, ""))) ||
  "/feedback").replace(/\/+$/, "");
var CSS = `
.fbw{display:flex;flex-wrap:wrap;align-items:center;gap:.3rem;margin:.4rem 0;
 font:var(--fbw-font,13px/1.4 system-ui,sans-serif);color:var(--fbw-color,inherit)}
.fbw button{font:inherit;color:inherit;cursor:pointer;padding:.15rem .55rem;
 background:var(--fbw-bg,#fff);border:1px solid var(--fbw-border,#c6cbd2);
 border-radius:var(--fbw-radius,6px)}
.fbw button[aria-pressed=true]{background:var(--fbw-accent,#2563eb);
 border-color:var(--fbw-accent,#2563eb);color:var(--fbw-on-accent,#fff)}
.fbw :focus-visible{outline:2px solid var(--fbw-accent,#2563eb);outline-offset:1px}
.fbw .fbw-stars button{border:0;background:none;padding:0 .1rem;font-size:1.25em;
 color:var(--fbw-star-off,#b4bac3)}
.fbw .fbw-stars .fbw-on{background:none;color:var(--fbw-star,#f59e0b)}
.fbw form{flex-basis:100%;display:grid;gap:.3rem;justify-items:start}
.fbw textarea{font:inherit;width:100%;box-sizing:border-box;padding:.3rem;
 border:1px solid var(--fbw-border,#c6cbd2);border-radius:var(--fbw-radius,6px)}
.fbw-status{color:var(--fbw-muted,#5b6470)}
.fbw-status[data-state=sent]{color:var(--fbw-ok,#15803d)}
.fbw-status[data-state=error]{color:var(--fbw-error,#b91c1c)}
.fbw [hidden]{display:none!important}`;
var widgets = new WeakMap();
var count = 0;

function addStyles() {
  try { // a constructed sheet is not inline style: style-src 'self' allows it
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
  } catch (e) {
    document.head.appendChild(make("style", {}, CSS));
  }
}

function make(tag, attrs, text) {
  var el = document.createElement(tag);
  for (var name in attrs) el.setAttribute(name, attrs[name]);
  if (text) el.textContent = text; // always text, never HTML
  return el;
}

function button(label, text) {
  return make("button", { type: "button", "aria-label": label, "aria-pressed": "false" }, text);
}

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + Math.random().toString(36).slice(2);
}

function answerText(w) {
  var given = w.el.getAttribute("data-feedback-answer");
  if (given !== null) return given;
  var text = "";
  w.el.childNodes.forEach((n) => { if (n !== w.root) text += n.textContent; });
  return text.trim();
}

function status(w, text, state) {
  w.status.textContent = text;
  w.status.setAttribute("data-state", state);
}

// One at a time, a repeat sent once; buttons stay enabled (keyboard focus stays put).
function send(w, body) {
  body.trace_id = w.trace;
  var payload = JSON.stringify(body);
  if (payload === w.last) return w.queue;
  w.last = payload;
  // a retry reuses its key: stored once
  var key = w.failed && w.failed.payload === payload ? w.failed.key : newKey();
  return (w.queue = w.queue.then(() => {
    status(w, "Sending\u2026", "sending");
    w.root.setAttribute("aria-busy", "true");
    return fetch(base + "/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Feedback-Token": w.token, "Idempotency-Key": key },
      body: payload
    });
  }).then((res) => res.json().catch(() => ({})).then((data) => {
    if (!res.ok) throw new Error((data.error && data.error.message) || "HTTP " + res.status);
  })).then(() => {
    w.failed = null;
    status(w, "Thanks, your feedback was sent.", "sent");
    return true;
  }, (err) => {
    w.failed = { payload, key };
    w.last = null;
    status(w, "Not sent: " + err.message + ". Try again.", "error");
    return false;
  }).then((ok) => {
    w.root.removeAttribute("aria-busy");
    return ok;
  }));
}

function press(buttons, chosen) {
  buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === chosen)));
}

function vote(w, value, comment) {
  var chosen = value === "up" ? w.up : w.down;
  if (value === "down" && comment === undefined) open(w, w.comment);
  if (value === "up") w.comment.hidden = true;
  if (w.vote === value && comment === undefined) return w.queue;
  var body = { type: "thumbs", value };
  if (comment !== undefined) body.comment = comment;
  return send(w, body).then((ok) => {
    if (ok) { w.vote = value; press([w.up, w.down], chosen); }
    return ok;
  });
}

function open(w, form, toggle) {
  var wasOpen = !form.hidden;
  w.comment.hidden = w.fix.hidden = true;
  w.fixToggle.setAttribute("aria-expanded", "false");
  if (toggle && wasOpen) return;
  form.hidden = false;
  if (toggle) toggle.setAttribute("aria-expanded", "true");
  var area = form.querySelector("textarea");
  if (form === w.fix && !w.edited) area.value = answerText(w);
  area.focus();
}

function textForm(name, label, action, onSubmit) {
  var id = "fbw-" + (++count);
  var form = make("form", { "class": "fbw-" + name, hidden: "" });
  var area = make("textarea", { id, name, rows: "3", maxlength: "10000" });
  form.append(make("label", { "for": id }, label), area, make("button", { type: "submit" }, action));
  form.onsubmit = (event) => {
    event.preventDefault();
    onSubmit(area.value, area);
  };
  return form;
}

function stars(w) {
  var group = make("span", { "class": "fbw-stars", role: "group", "aria-label": "Rating" });
  var all = [];
  function rate(value) {
    if (w.rating === value) return;
    send(w, { type: "rating", value }).then((ok) => {
      if (!ok) return;
      w.rating = value;
      press(all, all[value - 1]);
      all.forEach((s, i) => s.classList.toggle("fbw-on", i < value));
    });
  }
  for (var n = 1; n <= 5; n++) {
    var star = button("Rate " + n + " of 5 stars", "\u2605");
    star.onclick = rate.bind(null, n);
    all.push(star);
  }
  group.append(...all);
  return group;
}

function render(el) {
  var trace = el.getAttribute("data-feedback-trace");
  var token = el.getAttribute("data-feedback-token");
  if (!trace || !token || widgets.has(el)) return;
  var w = { el, trace, token, queue: Promise.resolve(true) };
  widgets.set(el, w);
  var root = w.root = make("div", { "class": "fbw", role: "group", "aria-label": "Feedback on this answer" });
  w.up = button("Thumbs up", "\uD83D\uDC4D");
  w.down = button("Thumbs down", "\uD83D\uDC4E");
  w.up.onclick = () => vote(w, "up");
  w.down.onclick = () => vote(w, "down");
  root.append(w.up, w.down);
  if (el.hasAttribute("data-feedback-rating")) root.append(stars(w));
  w.fixToggle = make("button", { type: "button", "aria-expanded": "false" }, "Suggest a correction");
  w.fixToggle.onclick = () => open(w, w.fix, w.fixToggle);
  w.comment = textForm("comment", "What was wrong? (optional)", "Send feedback", (text) => {
    vote(w, "down", text).then((ok) => {
      if (ok) { w.comment.hidden = true; w.down.focus(); }
    });
  });
  w.fix = textForm("correction", "Corrected answer", "Send correction", (text, area) => {
    var original = answerText(w);
    if (!text.trim() || text === original) {
      status(w, "Edit the answer, then send it.", "error");
      return area.focus();
    }
    send(w, { type: "correction", value: { original, corrected: text } }).then((ok) => {
      if (ok) { open(w, w.fix, w.fixToggle); w.fixToggle.focus(); }
    });
  });
  w.fix.oninput = () => { w.edited = true; };
  w.status = make("span", { "class": "fbw-status", role: "status", "aria-live": "polite" });
  root.append(w.fixToggle, w.comment, w.fix, w.status);
  el.append(root);
}

function scan(node) {
  if (node.nodeType !== 1) return;
  if (node.hasAttribute("data-feedback-trace")) render(node);
  node.querySelectorAll("[data-feedback-trace]").forEach(render);
}

// attach(el, {traceId, token, answer?, rating?}); a v2 token names the response (4th part)
function attach(el, info) {
  var t = info && info.token && String(info.token).split(".");
  var traceId = t && (t[0] === "v2" && t.length === 6 ? t[3] : info.traceId);
  if (!traceId) return null;
  if (info.answer != null) el.setAttribute("data-feedback-answer", info.answer);
  if (info.rating) el.setAttribute("data-feedback-rating", "");
  el.setAttribute("data-feedback-token", info.token);
  el.setAttribute("data-feedback-trace", traceId);
  render(el);
  return { traceId: traceId, token: info.token };
}

// headers first, else the JSON body's trace_id / feedback_token (`body`: already read)
function fromResponse(response, el, body) {
  var h = response.headers;
  if (h.get("X-Feedback-Token")) {
    return Promise.resolve(attach(el, { traceId: h.get("X-Trace-Id"), token: h.get("X-Feedback-Token") }));
  }
  return (body ? Promise.resolve(body) : response.clone().json()).then((data) =>
    attach(el, { traceId: data && data.trace_id, token: data && data.feedback_token }), () => null);
}

// the stream's final `event: feedback`: a MessageEvent, its data, or the parsed object
function fromEvent(el, event) {
  var data = event && event.data !== undefined ? event.data : event;
  try { if (typeof data === "string") data = JSON.parse(data); } catch (e) { return null; }
  return attach(el, data && { traceId: data.trace_id, token: data.token || data.feedback_token });
}

function start() {
  addStyles();
  scan(document.body);
  new MutationObserver((records) => {
    records.forEach((r) => {
      if (r.type === "attributes") render(r.target);
      else r.addedNodes.forEach(scan);
    });
  }).observe(document.body, {
    childList: true, subtree: true, attributes: true,
    attributeFilter: ["data-feedback-trace", "data-feedback-token"]
  });
}

window.FeedbackWidget = { endpoint: base, attach, fromResponse, fromEvent };
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
})();
