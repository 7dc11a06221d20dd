"use strict";
// The chat (standalone page `/` and the embedded panel `/embed`).
// Message HTML comes sanitised from the server; the CSP forbids inline
// script, so even markup that slipped through could not run.
const body = document.body;
const log = document.getElementById("log");
const input = document.getElementById("text");
const send_button = document.getElementById("send");
const counter = document.getElementById("counter");
const typing = document.getElementById("typing");
const MAX = parseInt(body.dataset.max, 10) || 4000;

// Fixed texts: English, replaced by `[widget.texts.LANG]` for the language
// the embed script names (`?lang=`) or the browser's first one configured.
const T = {
  title: null, greeting: null, placeholder: "Ask a question…", send: "Send",
  your_message: "Your message", conversation: "Conversation", close: "Close chat",
  sending: "Sending…", sent: "Sent", not_sent: "Not sent", retry: "Retry",
  writing: "Support is writing…", unreachable: "Cannot reach support right now",
};
(function translate() {
  let all = {};
  try { all = JSON.parse(body.dataset.texts || "{}") || {}; } catch (e) { all = {}; }
  const wanted = [new URLSearchParams(location.search).get("lang")].concat(navigator.languages || [navigator.language]);
  let chosen = null;
  for (const l of wanted) {
    if (!l) continue;
    const code = String(l).toLowerCase();
    const found = Object.keys(all).find(k => k.toLowerCase() === code) || Object.keys(all).find(k => k.toLowerCase() === code.split("-")[0]);
    if (found) { chosen = found; break; }
  }
  if (all.en && chosen !== "en") Object.assign(T, all.en);
  if (chosen) { Object.assign(T, all[chosen]); document.documentElement.lang = chosen; }
  if (T.title) { document.getElementById("title").textContent = T.title; document.title = T.title; }
  if (T.greeting) body.dataset.greeting = T.greeting;
  input.placeholder = T.placeholder;
  send_button.textContent = T.send;
  send_button.setAttribute("aria-label", T.send);
  document.querySelector("label[for=text]").textContent = T.your_message;
  log.setAttribute("aria-label", T.conversation);
  document.getElementById("close").setAttribute("aria-label", T.close);
  typing.querySelector(".visually-hidden").textContent = T.writing;
})();
const TOKEN_KEY = "switchboard-visitor-token";
let token = null;
// The mailbox cursor: the newest mailbox message shown. Mailbox messages
// arrive from history, the event stream, polling and press replies; each
// is shown once, by its id.
let cursor = "";
const seen = new Set();
let pending = 0;
// Answers being written, by client message id: the bubble the words go
// into until the answer itself replaces it.
const writing = new Map();
const answered = new Set();
let live = false;

if (/^#[0-9a-fA-F]{3,6}$/.test(body.dataset.accent || "")) {
  document.documentElement.style.setProperty("--accent", body.dataset.accent);
  // Black or white text on the accent, whichever contrasts more (the
  // server's web::embed::on_accent): at least 4.58:1 either way.
  if (/^#(fff|000)$/.test(body.dataset.onAccent || "")) {
    document.documentElement.style.setProperty("--on-accent", body.dataset.onAccent);
  }
}
if (body.dataset.mode === "embed") {
  const close = document.getElementById("close");
  close.hidden = false;
  close.onclick = () => window.parent.postMessage({ type: "switchboard:close" }, "*");
  // Keyboard: Escape closes the panel (the launcher gets focus back); the
  // panel opening puts the cursor in the input.
  document.addEventListener("keydown", e => { if (e.key === "Escape") close.onclick(); });
  window.addEventListener("focus", () => { if (!document.activeElement || document.activeElement === body) input.focus(); });
  if (document.hasFocus()) input.focus();
}

// Random ids without secure-context-only APIs (crypto.randomUUID is
// missing on plain-HTTP hosts; getRandomValues is everywhere).
function rid() {
  const bytes = new Uint8Array(16);
  if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
}

function store(key, value) {
  try { if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value); } catch (e) { /* storage blocked: this tab only */ }
}
function stored(key) {
  try { return localStorage.getItem(key); } catch (e) { return null; }
}

function safeUrl(url) {
  try { const u = new URL(url); return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null; } catch (e) { return null; }
}

function time(at) {
  const d = at ? new Date(at) : new Date();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function initials(name) {
  return (name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map(w => w[0].toUpperCase()).join("");
}

function scroll() { log.scrollTop = log.scrollHeight; }

// A newer message supersedes every older row of buttons: they are
// disabled, the chosen one stays marked (the server refuses stale presses
// anyway). Lasting buttons (👍/👎 on an answer) stay until used.
function retireButtons(except) {
  log.querySelectorAll(".buttons button").forEach(b => {
    if (except && except.contains(b)) return;
    if (b.dataset.lasting && !b.parentElement.dataset.used) return;
    b.disabled = true;
  });
}

function note(text) {
  const div = document.createElement("div");
  div.className = "msg note";
  div.textContent = text;
  log.append(div);
  scroll();
}

// A mailbox message (it has a cursor) is shown once; false if seen.
function fresh(m) {
  if (!m.cursor) return true;
  if (seen.has(m.cursor)) return false;
  seen.add(m.cursor);
  if (m.cursor > cursor) cursor = m.cursor;
  return true;
}

// One message from the server: {kind, author, text, html, at, sources,
// buttons}; in place of `instead` (a bubble being written) when given.
function render(m, instead) {
  const kind = ["customer", "bot", "agent", "notice"].includes(m.kind) ? m.kind : "bot";
  if (kind !== "customer") retireButtons();
  const div = document.createElement("div");
  div.className = "msg " + (kind === "customer" ? "me" : kind);
  if (kind === "agent") {
    const who = document.createElement("div");
    who.className = "author";
    const avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    avatar.textContent = initials(m.author);
    who.append(avatar, (m.author || "Support") + " (support)");
    div.append(who);
  }
  const text = document.createElement("div");
  text.className = "text";
  // Right-to-left scripts (Arabic, Hebrew…) run right to left, per message.
  text.dir = "auto";
  // The visitor's own words are shown as typed; everything else as the
  // server rendered it.
  if (kind !== "customer" && typeof m.html === "string") text.innerHTML = m.html; else text.textContent = m.text;
  text.querySelectorAll("a").forEach(a => { a.target = "_blank"; a.rel = "noopener noreferrer nofollow"; });
  div.append(text);
  if (m.sources && m.sources.length) {
    const s = document.createElement("div");
    s.className = "sources";
    m.sources.forEach(src => {
      const url = src.url && safeUrl(src.url);
      const card = document.createElement(url ? "a" : "span");
      card.className = "source";
      if (url) { card.href = url; card.target = "_blank"; card.rel = "noopener noreferrer"; }
      card.textContent = src.title;
      s.append(card);
    });
    div.append(s);
  }
  if (m.buttons && m.buttons.length) {
    m.buttons.forEach(rowButtons => {
      const row = document.createElement("div");
      row.className = "buttons";
      rowButtons.forEach(b => {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.label;
        if ((m.lasting || []).includes(b.data)) btn.dataset.lasting = "1";
        const choose = () => {
          // Only this row: 👍/👎 stay usable after "solved?" and back.
          row.dataset.used = "1";
          row.querySelectorAll("button").forEach(x => { x.disabled = true; });
          btn.classList.add("chosen");
          btn.setAttribute("aria-pressed", "true");
        };
        if ((m.chosen || []).includes(b.data)) choose();
        btn.onclick = () => { choose(); press(b.data, row, btn); };
        row.append(btn);
      });
      div.append(row);
    });
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = time(m.at);
  div.append(meta);
  if (instead && instead.parentNode) instead.replaceWith(div); else log.append(div);
  scroll();
  return div;
}

// Words of the answer to message `id`, as the model writes them: plain
// text until the whole answer (sanitised HTML) replaces them.
function write(id, text) {
  if (answered.has(id)) return;
  let bubble = writing.get(id);
  if (!bubble) {
    bubble = document.createElement("div");
    bubble.className = "msg bot writing";
    // Not read out word by word: the whole answer replaces it and is
    // announced once.
    bubble.setAttribute("aria-hidden", "true");
    const t = document.createElement("div");
    t.className = "text";
    bubble.append(t);
    log.append(bubble);
    writing.set(id, bubble);
    typing.hidden = true;
  }
  bubble.firstChild.textContent += text;
  scroll();
}

async function request(method, path, payload) {
  const headers = { "x-visitor-token": token };
  if (payload) headers["content-type"] = "application/json";
  const r = await fetch(path, { method, headers, body: payload ? JSON.stringify(Object.assign({ token }, payload)) : undefined });
  const json = await r.json().catch(() => ({}));
  if (r.status === 401) {
    // The token is no longer valid (another server key): start over.
    store(TOKEN_KEY, null);
    token = null;
  }
  if (!r.ok) { const e = new Error(json.error || ("HTTP " + r.status)); e.status = r.status; throw e; }
  return json;
}

function showTyping(on) {
  pending += on ? 1 : -1;
  typing.hidden = pending <= 0;
  if (!typing.hidden) scroll();
}

// A reply to a request; `id` is the client message id it answers.
function show(json, id) {
  const bubble = id && writing.get(id);
  if (id) { answered.add(id); writing.delete(id); }
  if (json.reply && fresh(json.reply)) render(json.reply, bubble);
  else if (bubble) bubble.remove();
  if (json.ack) note(json.ack);
}

// A message bubble with its state: sending, sent, failed (retry with the
// same id, so the server answers it once).
function sendMessage(text, id, bubble) {
  id = id || rid();
  if (!bubble) bubble = render({ kind: "customer", text, at: Date.now() });
  bubble.classList.remove("failed");
  const meta = bubble.querySelector(".meta");
  meta.textContent = time() + " · " + T.sending;
  showTyping(true);
  (async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const json = await request("POST", "/api/chat/messages", { text, id });
        meta.textContent = time() + " · " + T.sent;
        show(json, id);
        break;
      } catch (e) {
        // Network errors are retried quietly a few times.
        if (e instanceof TypeError && attempt < 2) { await new Promise(r => setTimeout(r, 1500 * (attempt + 1))); continue; }
        bubble.classList.add("failed");
        meta.textContent = T.not_sent + (e instanceof TypeError ? "" : ": " + e.message) + " · ";
        const retry = document.createElement("button");
        retry.type = "button";
        retry.className = "retry";
        retry.textContent = T.retry;
        retry.onclick = () => sendMessage(text, id, bubble);
        meta.append(retry);
        break;
      }
    }
    showTyping(false);
  })();
}

async function press(data, row, btn) {
  showTyping(true);
  try {
    const json = await request("POST", "/api/chat/press", { data, id: rid() });
    // Kept in the log as the visitor's message: shown as theirs.
    if (typeof json.said === "string" && json.reply) render({ kind: "customer", text: json.said, at: Date.now() });
    show(json);
  }
  catch (e) {
    note(T.not_sent + ": " + e.message);
    delete row.dataset.used;
    row.querySelectorAll("button").forEach(x => { x.disabled = false; });
    btn.classList.remove("chosen");
    btn.removeAttribute("aria-pressed");
  }
  showTyping(false);
}

// Polling: only while the event stream is not open.
async function poll() {
  if (!live && token) {
    try {
      const json = await request("GET", "/api/chat/updates?after=" + encodeURIComponent(cursor));
      json.messages.filter(fresh).forEach(m => render(m));
      if (json.cursor > cursor) cursor = json.cursor;
    } catch (e) { /* offline: try again later */ }
  }
  setTimeout(poll, 2000);
}

// The event stream: answers as they are written, agent messages and
// notices at once. EventSource reconnects by itself and resumes from the
// last event id; a stream refused or unavailable falls back to polling and
// is tried again later.
function listen() {
  if (!window.EventSource || !token) return;
  const url = "/api/chat/stream?token=" + encodeURIComponent(token) + "&after=" + encodeURIComponent(cursor);
  const es = new EventSource(url);
  es.addEventListener("ready", () => { live = true; });
  es.addEventListener("message", e => {
    try { const m = JSON.parse(e.data); if (fresh(m)) render(m); } catch (err) { /* ignore a bad event */ }
  });
  es.addEventListener("delta", e => {
    try { const d = JSON.parse(e.data); write(String(d.id), String(d.text)); } catch (err) { /* ignore */ }
  });
  es.onerror = () => {
    live = false;
    if (es.readyState === EventSource.CLOSED) setTimeout(listen, 30000);
  };
}

function updateCounter() {
  const n = input.value.length;
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 160) + "px";
  input.style.overflowY = input.scrollHeight > 160 ? "auto" : "hidden";
  counter.textContent = n > MAX * 0.8 ? n + " / " + MAX : "";
  counter.classList.toggle("over", n > MAX);
  send_button.disabled = n > MAX;
}

function submit() {
  const text = input.value.trim();
  if (!text || text.length > MAX || !token) return;
  input.value = "";
  updateCounter();
  sendMessage(text);
}

document.getElementById("form").onsubmit = e => { e.preventDefault(); submit(); };
input.addEventListener("input", updateCounter);
input.addEventListener("keydown", e => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
});

async function start() {
  token = stored(TOKEN_KEY);
  for (let attempt = 0; ; attempt++) {
    try {
      if (!token) {
        token = (await request("POST", "/api/chat/visitor")).token;
        store(TOKEN_KEY, token);
      }
      const history = await request("GET", "/api/chat/history");
      note(body.dataset.greeting || "");
      history.messages.filter(fresh).forEach(m => render(m));
      // Only the last message's buttons (and unused 👍/👎) still apply.
      retireButtons(log.lastElementChild);
      if ((history.cursor || "") > cursor) cursor = history.cursor;
      break;
    } catch (e) {
      if (attempt >= 5) { note(T.unreachable + ": " + e.message); break; }
      await new Promise(r => setTimeout(r, 1000 * (attempt + 1)));
    }
  }
  listen();
  setTimeout(poll, 2000);
}
start();
