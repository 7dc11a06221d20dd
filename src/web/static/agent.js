"use strict";
// The console shell: sign-in, the top bar and its views (the inbox for
// everyone, the knowledge-base editor, the dashboard, the
// knowledge-gap page and the suggested articles for admins). Signed in by the session
// cookie (HttpOnly, set by POST /api/agent/session); every change carries
// the session's CSRF token.
let csrf = null;
let me = null;

// A JSON request to `path` (a full path such as /api/agent/queue). Throws an
// Error with `status` and `body` (the parsed JSON) when it is not a success.
async function call(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (csrf) headers["x-csrf-token"] = csrf;
  const r = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && me) { location.reload(); throw new Error("signed out"); }
  const json = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(json.error || ("HTTP " + r.status));
    e.status = r.status; e.body = json;
    throw e;
  }
  return json;
}

// The agent API (paths below /api/agent).
function api(method, path, body) { return call(method, "/api/agent" + path, body); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function button(label, onclick, cls) {
  const b = el("button", label, cls); b.type = "button"; b.onclick = onclick; return b;
}

// "3m", "2h 5m", "4d": how long ago `at` was (both in ms).
function ago(now, at) {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m";
  const h = Math.floor(m / 60);
  if (h < 24) return h + "h " + (m % 60) + "m";
  return Math.floor(h / 24) + "d";
}

const views = {};
let shown = null;

function show(name) {
  shown = name;
  document.querySelectorAll("#nav button[data-view]").forEach(b => b.classList.toggle("active", b.dataset.view === name));
  Object.entries(views).forEach(([n, v]) => { v.root.hidden = n !== name; if (n === name) v.activate(); });
}

function layout() {
  document.body.innerHTML = "";
  document.body.className = "console";
  const bar = el("div"); bar.id = "nav";
  const tabs = el("div", undefined, "views");
  const add = (name, label, view) => {
    views[name] = view;
    const b = button(label, () => show(name)); b.dataset.view = name; tabs.append(b);
  };
  const main = el("div"); main.id = "views";
  const inbox = Inbox.create(); main.append(inbox.root); add("inbox", "Inbox", inbox);
  if (me.admin) { const kb = KbEditor.create(); main.append(kb.root); add("kb", "Knowledge base", kb); }
  if (me.admin) { const dash = Dashboard.create(); main.append(dash.root); add("dash", "Dashboard", dash); }
  if (me.admin) { const gaps = Gaps.create(); main.append(gaps.root); add("gaps", "Knowledge gaps", gaps); }
  if (me.admin) { const suggest = Suggestions.create(); main.append(suggest.root); add("suggest", "Suggestions", suggest); }
  if (me.admin) { const settings = SettingsView.create(); main.append(settings.root); add("settings", "Settings", settings); }
  const who = el("div", undefined, "who");
  who.append(el("span", `${me.agent}${me.admin ? " (admin)" : ""}`, "muted"));
  who.append(button("Sign out", async () => { await api("DELETE", "/session").catch(() => {}); location.reload(); }));
  who.append(button("Sign out everywhere", async () => { await api("POST", "/session/everywhere").catch(() => {}); location.reload(); }));
  bar.append(tabs, who);
  document.body.append(bar, main);
  const wanted = location.hash.slice(1);
  show(me.admin && ["kb", "dash", "gaps", "suggest", "settings"].includes(wanted) ? wanted : "inbox");
}

function signedIn(who) { me = who; csrf = who.csrf; layout(); }

// An invite link (/agent#invite=TOKEN; the fragment never reaches the
// server's log): choose a password, then signed in. Otherwise: already
// signed in (the cookie survives a reload)?
const invite = location.hash.startsWith("#invite=") ? location.hash.slice(8) : null;
// An invite link opened in a tab already showing the console only changes
// the fragment: load the page again to show the invite form.
window.addEventListener("hashchange", () => { if (location.hash.startsWith("#invite=")) location.reload(); });
if (invite) {
  history.replaceState(null, "", location.pathname);
  document.getElementById("login").hidden = true;
  document.getElementById("invite").hidden = false;
  document.getElementById("new-password").focus();
  document.getElementById("invite").onsubmit = async e => {
    e.preventDefault();
    const err = document.getElementById("invite-err");
    const password = document.getElementById("new-password").value;
    if (password !== document.getElementById("new-password-2").value) { err.textContent = "The two passwords differ."; return; }
    err.textContent = "";
    try {
      const r = await fetch("/api/agent/invite", {
        method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: invite, password }),
      });
      const json = await r.json().catch(() => ({}));
      if (!r.ok) { err.textContent = json.error || ("HTTP " + r.status); return; }
      signedIn(json);
    } catch (x) { err.textContent = x.message; }
  };
} else {
  fetch("/api/agent/session", { credentials: "same-origin" })
    .then(r => r.ok ? r.json() : null)
    .then(who => { if (who) signedIn(who); })
    .catch(() => {});
}

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
