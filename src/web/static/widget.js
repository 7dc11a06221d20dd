"use strict";
const log = document.getElementById("log");
const input = document.getElementById("text");
let session = localStorage.getItem("switchboard-session");
if (!session) { session = crypto.randomUUID(); localStorage.setItem("switchboard-session", session); }
let cursor = "";

function safeUrl(url) {
  try { const u = new URL(url); return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null; } catch { return null; }
}

// Buttons act on the message they came with; a newer bot message
// supersedes every older row (the server refuses stale presses anyway).
function retireButtons() {
  log.querySelectorAll(".buttons button").forEach(b => b.disabled = true);
}

function add(kind, text, extra) {
  if (kind === "bot") retireButtons();
  const div = document.createElement("div");
  div.className = "msg " + kind;
  div.textContent = text;
  if (extra && extra.sources && extra.sources.length) {
    const s = document.createElement("div");
    s.className = "sources";
    s.append("Sources: ");
    extra.sources.forEach((src, i) => {
      if (i) s.append(" · ");
      const url = src.url && safeUrl(src.url);
      if (url) { const a = document.createElement("a"); a.href = url; a.target = "_blank"; a.rel = "noopener"; a.textContent = src.title; s.append(a); }
      else s.append(src.title);
    });
    div.append(s);
  }
  if (extra && extra.buttons && extra.buttons.length) {
    const row = document.createElement("div");
    row.className = "buttons";
    extra.buttons.flat().forEach(b => {
      const btn = document.createElement("button");
      btn.textContent = b.label;
      btn.onclick = () => {
        row.querySelectorAll("button").forEach(x => x.disabled = true);
        btn.classList.add("chosen");
        btn.setAttribute("aria-pressed", "true");
        press(b.data, b.label);
      };
      row.append(btn);
    });
    div.append(row);
  }
  log.append(div);
  log.scrollTop = log.scrollHeight;
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(json.error || ("HTTP " + r.status));
  return json;
}

function show(json) {
  if (json.reply) add("bot", json.reply.text, json.reply);
  if (json.ack) add("note", json.ack);
}

async function send(text) {
  add("me", text);
  // A dropped connection is retried with the same id: the server finishes
  // the answer anyway and hands the stored one back.
  const id = crypto.randomUUID();
  for (let attempt = 0; ; attempt++) {
    try { show(await post("/api/chat/messages", { session, text, id })); return; }
    catch (e) {
      if (!(e instanceof TypeError) || attempt >= 3) { add("note", "Not sent: " + e.message); return; }
      await new Promise(r => setTimeout(r, 2000 * (attempt + 1)));
    }
  }
}

async function press(data, label) {
  add("me", label);
  try { show(await post("/api/chat/press", { session, data, id: crypto.randomUUID() })); }
  catch (e) { add("note", "Not sent: " + e.message); }
}

async function poll() {
  try {
    const r = await fetch("/api/chat/updates?session=" + encodeURIComponent(session) + "&after=" + encodeURIComponent(cursor));
    if (r.ok) {
      const json = await r.json();
      // A notice (an agent joined, transferred, gave back, closed) is not
      // an answer: shown as a line of its own, without buttons.
      json.messages.forEach(m => m.notice ? add("notice", m.text) : add("bot", m.text, m));
      cursor = json.cursor;
    }
  } catch (e) { /* offline: try again later */ }
  setTimeout(poll, 2000);
}

document.getElementById("form").onsubmit = e => {
  e.preventDefault();
  const text = input.value.trim();
  if (text) { input.value = ""; send(text); }
};
add("note", "Ask anything about our product. Type /human to talk to a person.");
fetch("/api/chat/updates?session=" + encodeURIComponent(session)).then(r => r.json()).then(j => { cursor = j.cursor || ""; poll(); }).catch(poll);
