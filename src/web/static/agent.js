"use strict";
// Signed in by the session cookie (HttpOnly, set by POST /api/agent/session);
// every change carries the session's CSRF token.
let csrf = null;
let me = null;
let current = null;

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (csrf) headers["x-csrf-token"] = csrf;
  const r = await fetch("/api/agent" + path, {
    method, headers, credentials: "same-origin",
    body: body ? JSON.stringify(body) : undefined,
  });
  if (r.status === 401 && me) { location.reload(); throw new Error("signed out"); }
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(json.error || ("HTTP " + r.status));
  return json;
}

function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

function layout() {
  document.body.innerHTML = "";
  const q = el("div"); q.id = "queue";
  const main = el("div"); main.id = "main";
  const head = el("div"); head.id = "head"; head.append(el("span", "Pick a conversation", "muted"));
  const log = el("div"); log.id = "log";
  const form = el("form");
  const ta = el("textarea"); ta.placeholder = "Reply to the customer (or tick 'note' for an internal note)";
  const note = el("label"); const cb = el("input"); cb.type = "checkbox"; note.append(cb, " note");
  const send = el("button", "Send");
  form.append(ta, note, send);
  form.onsubmit = async e => {
    e.preventDefault();
    if (!current || !ta.value.trim()) return;
    try { await api("POST", `/conversations/${current}/${cb.checked ? "note" : "reply"}`, { text: ta.value }); ta.value = ""; open(current); }
    catch (err) { alert(err.message); }
  };
  const bar = el("div"); bar.id = "bar";
  bar.append(el("span", `${me.agent}${me.admin ? " (admin)" : ""}`, "muted"));
  const out = el("button", "Sign out"); out.type = "button";
  out.onclick = async () => { await api("DELETE", "/session").catch(() => {}); location.reload(); };
  const everywhere = el("button", "Sign out everywhere"); everywhere.type = "button";
  everywhere.onclick = async () => { await api("POST", "/session/everywhere").catch(() => {}); location.reload(); };
  bar.append(out, everywhere);
  main.append(bar, head, log, form);
  document.body.append(q, main);
}

async function refresh() {
  try {
    const queue = await api("GET", "/queue");
    const q = document.getElementById("queue");
    q.innerHTML = "";
    if (!queue.length) q.append(el("div", "Nobody is waiting.", "muted"));
    queue.forEach(c => {
      const d = el("div");
      d.append(el("div", `${c.customer} · ${c.channel}`), el("div", `${c.status}${c.position ? " #" + c.position : ""} · ${c.handoff_reason || ""}${c.assigned_agent ? " · " + c.assigned_agent : ""}`, "muted"));
      if (c.id === current) d.className = "active";
      d.onclick = () => open(c.id);
      q.append(d);
    });
  } catch (e) { console.warn(e); }
}

async function act(action, body) {
  try { await api("POST", `/conversations/${current}/${action}`, body); open(current); refresh(); }
  catch (e) { alert(e.message); }
}

async function open(id) {
  current = id;
  const data = await api("GET", `/conversations/${id}`);
  const head = document.getElementById("head");
  head.innerHTML = "";
  const c = data.conversation;
  head.append(el("div", `${data.customer.display_name || data.customer.external_id} on ${c.channel} — ${c.status}${c.assigned_agent ? " (" + c.assigned_agent + ")" : ""} — reason: ${c.handoff_reason || "-"}`));
  [["Claim", "claim"], ["Resolve", "resolve"], ["Give back", "give-back"]].forEach(([label, action]) => {
    const b = el("button", label); b.onclick = () => act(action); head.append(b);
  });
  const t = el("button", "Transfer…"); t.onclick = () => { const to = prompt("Transfer to agent:"); if (to) act("transfer", { agent: to }); }; head.append(t);
  const k = el("button", "Canned…"); k.onclick = () => { const n = prompt("Canned reply name (prompts/canned/NAME.md):"); if (n) act("canned", { name: n }); }; head.append(k);
  const log = document.getElementById("log");
  log.innerHTML = "";
  // Notices (what the customer was told when an agent joined, transferred,
  // gave back or closed) come from events, shown apart from messages.
  data.transcript.forEach(m => {
    if (m.kind === "notice") { log.append(el("div", m.text, "m notice")); return; }
    const d = el("div", undefined, "m" + (m.role === "note" ? " note" : ""));
    d.append(el("span", m.author || m.role, "role"), document.createTextNode(m.text));
    log.append(d);
  });
  log.scrollTop = log.scrollHeight;
}

function start() { layout(); refresh(); setInterval(refresh, 3000); setInterval(() => current && open(current), 5000); }

function signedIn(who) { me = who; csrf = who.csrf; start(); }

// Already signed in (the cookie survives a reload)?
fetch("/api/agent/session", { credentials: "same-origin" })
  .then(r => r.ok ? r.json() : null)
  .then(who => { if (who) signedIn(who); })
  .catch(() => {});

document.getElementById("login").onsubmit = async e => {
  e.preventDefault();
  const err = document.getElementById("err");
  err.textContent = "";
  try {
    const r = await fetch("/api/agent/session", {
      method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: document.getElementById("name").value.trim(), password: document.getElementById("password").value }),
    });
    const json = await r.json().catch(() => ({}));
    if (!r.ok) { err.textContent = json.error || ("HTTP " + r.status); return; }
    signedIn(json);
  } catch (x) { err.textContent = x.message; }
};
