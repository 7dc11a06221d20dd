"use strict";
// The inbox: tabs Waiting / Mine / All open / Resolved, a search over every
// conversation (customer, text, tags) with channel and status filters, tags, and the
// conversation view: the timeline (messages and what happened: handed off
// because…, X joined, transferred, resolved), only the actions that apply,
// errors shown inline, a confirmation before resolving a chat nobody
// claimed, "Suggest an article from this answer" on a resolved one that an
// agent answered, Enter to send (Shift+Enter for a new line), "/" for the
// canned replies, keyboard shortcuts ("?" lists them), transfer to an
// agent picked from those online. Changes are pushed over an event stream (polling only
// while it is down), with an opt-in alert for new waiting chats. Re-reading keeps the
// scroll position unless the view was at the bottom.
const Inbox = (() => {
  const TABS = [["waiting", "Waiting"], ["mine", "Mine"], ["open", "All open"], ["resolved", "Resolved"]];
  const ICONS = { web: "🌐", telegram: "✈️", discord: "💬", console: "⌨️" };
  const STATUS = { bot: "with the bot", waiting_for_agent: "waiting", with_agent: "with an agent", resolved: "resolved" };

  function create() {
    const root = el("div", undefined, "inbox view"); root.id = "inbox";
    const side = el("div", undefined, "side");
    const tabs = el("div", undefined, "tabs"); tabs.id = "inbox-tabs";
    const filters = el("div", undefined, "filters");
    const search = el("input"); search.type = "search"; search.id = "inbox-search"; search.placeholder = "Search customers and messages";
    const channel = el("select"); channel.id = "inbox-channel";
    [["", "any channel"], ["web", "web"], ["telegram", "telegram"], ["discord", "discord"], ["console", "console"]]
      .forEach(([v, l]) => { const o = el("option", l); o.value = v; channel.append(o); });
    const status = el("select"); status.id = "inbox-status";
    [["", "any status"], ["waiting_for_agent", "waiting"], ["with_agent", "with an agent"], ["resolved", "resolved"], ["bot", "with the bot"]]
      .forEach(([v, l]) => { const o = el("option", l); o.value = v; status.append(o); });
    filters.append(search, channel, status);
    // More filters: agent, hand-off reason, started between two dates, CSAT.
    const more = el("details", undefined, "more-filters"); more.id = "inbox-more";
    more.append(el("summary", "More filters"));
    const byAgent = el("select"); byAgent.id = "inbox-agent";
    const anyAgent = el("option", "any agent"); anyAgent.value = ""; byAgent.append(anyAgent);
    const reason = el("select"); reason.id = "inbox-reason";
    [["", "any reason"], ["customer_request", "asked for a person"], ["knowledge_gap", "knowledge gap"], ["frustration", "frustration"],
     ["llm_failure", "model failure"], ["rule", "rule"], ["vip", "VIP"], ["manual", "manual"]]
      .forEach(([v, l]) => { const o = el("option", l); o.value = v; reason.append(o); });
    const dateField = (label, id) => { const l = el("label", label + " "); const i = el("input"); i.type = "date"; i.id = id; l.append(i); return [l, i]; };
    const [fromLabel, from] = dateField("from", "inbox-from");
    const [toLabel, to] = dateField("to", "inbox-to");
    const csat = el("select"); csat.id = "inbox-csat";
    [["", "any CSAT"], ["5", "CSAT 5"], ["4", "CSAT 4"], ["3", "CSAT 3"], ["2", "CSAT 2"], ["1", "CSAT 1"]]
      .forEach(([v, l]) => { const o = el("option", l); o.value = v; csat.append(o); });
    more.append(byAgent, reason, fromLabel, toLabel, csat);
    filters.append(more);
    // Opt-in: a desktop notification and a short tone for each new waiting
    // chat (the browser asks for permission once).
    const alertLabel = el("label", undefined, "note-toggle");
    const alertBox = el("input"); alertBox.type = "checkbox"; alertBox.id = "inbox-alerts";
    alertLabel.append(alertBox, " alert me to new waiting chats");
    filters.append(alertLabel);
    const list = el("div", undefined, "list"); list.id = "inbox-list";
    side.append(tabs, filters, list);
    const main = el("div", undefined, "conversation"); main.id = "conversation";
    const head = el("div", undefined, "head"); head.id = "head";
    head.append(el("span", "Pick a conversation", "muted"));
    const err = el("div", undefined, "error"); err.id = "inbox-error"; err.setAttribute("role", "alert");
    const log = el("div", undefined, "log"); log.id = "log";
    const form = el("form", undefined, "reply"); form.id = "reply";
    const ta = el("textarea"); ta.id = "reply-text"; ta.placeholder = "Reply to the customer (Enter sends, Shift+Enter for a new line)";
    const note = el("label", undefined, "note-toggle"); const cb = el("input"); cb.type = "checkbox"; cb.id = "reply-note"; note.append(cb, " internal note");
    const send = el("button", "Send"); send.id = "reply-send";
    // Typing "/" offers the canned replies: the list narrows as the name is
    // typed, arrows move, Enter or Tab puts the reply in the box to send or
    // edit, Escape closes it.
    const picker = el("ul", undefined, "canned-picker"); picker.id = "canned-picker";
    picker.setAttribute("role", "listbox"); picker.hidden = true;
    ta.setAttribute("aria-controls", "canned-picker");
    form.append(picker, ta, note, send);
    form.hidden = true;
    main.append(head, err, log, form);
    root.append(side, main);

    let tab = "waiting";
    let current = null;
    let lastList = "";
    let lastConversation = "";
    let timers = [];

    TABS.forEach(([name, label]) => {
      const b = button(label, () => { tab = name; search.value = ""; refresh(); }); b.dataset.tab = name; tabs.append(b);
    });
    const later = () => { clearTimeout(search.t); search.t = setTimeout(refresh, 200); };
    search.oninput = later; channel.onchange = refresh; status.onchange = refresh;
    [byAgent, reason, from, to, csat].forEach(f => { f.onchange = refresh; });

    async function refresh() {
      const extra = byAgent.value || reason.value || from.value || to.value || csat.value;
      const searching = search.value.trim() !== "" || status.value !== "" || !!extra;
      tabs.querySelectorAll("button").forEach(b => b.classList.toggle("active", !searching && b.dataset.tab === tab));
      const q = new URLSearchParams();
      q.set("tab", searching ? "all" : tab);
      if (search.value.trim()) q.set("q", search.value.trim());
      if (channel.value) q.set("channel", channel.value);
      if (status.value) q.set("status", status.value);
      if (byAgent.value) q.set("agent", byAgent.value);
      if (reason.value) q.set("reason", reason.value);
      // Dates are whole local days: from its start, to the end of "to".
      if (from.value) q.set("from", String(new Date(from.value + "T00:00").getTime()));
      if (to.value) q.set("until", String(new Date(to.value + "T00:00").getTime() + 86400000));
      if (csat.value) q.set("csat", csat.value);
      try {
        const data = await api("GET", "/inbox?" + q);
        const key = JSON.stringify([q.toString(), data.conversations.map(c => [c.id, c.status, c.assigned_agent, c.last_at, c.unread, c.tags]), current, Math.floor(data.now / 30000)]);
        if (key === lastList) return;
        lastList = key;
        list.innerHTML = "";
        if (!data.conversations.length) list.append(el("div", searching ? "Nothing matches." : "Nothing here.", "muted empty"));
        data.conversations.forEach(c => {
          const row = el("div", undefined, "row"); row.dataset.id = c.id;
          if (c.id === current) row.classList.add("active");
          const top = el("div", undefined, "top");
          top.append(el("span", ICONS[c.channel] || "•", "icon"), el("span", c.customer, "name"));
          if (c.unread > 0 && c.id !== current) {
            const badge = el("span", String(c.unread), "badge");
            badge.setAttribute("aria-label", c.unread + " unread");
            top.append(badge);
          }
          const since = c.status === "resolved" ? c.resolved_at : (c.handoff_at || c.updated_at);
          const when = c.status === "waiting_for_agent" ? "waiting " + ago(data.now, since) : ago(data.now, since) + " ago";
          top.append(el("span", when, "when"));
          row.append(top);
          const meta = [c.channel, STATUS[c.status] || c.status];
          if (c.handoff_reason) meta.push(c.handoff_reason);
          if (c.assigned_agent) meta.push(c.assigned_agent);
          row.append(el("div", meta.join(" · "), "muted small"));
          if (c.tags && c.tags.length) row.append(el("div", c.tags.map(t => "#" + t).join(" "), "small row-tags"));
          if (c.last_text) row.append(el("div", (c.last_role === "customer" ? "" : c.last_role + ": ") + c.last_text, "last"));
          row.onclick = () => open(c.id);
          list.append(row);
        });
      } catch (e) { console.warn(e); }
    }

    function fail(e) { err.textContent = e.message; }

    async function act(action, body) {
      err.textContent = "";
      try { await api("POST", `/conversations/${current}/${action}`, body); lastConversation = ""; await open(current); refresh(); }
      catch (e) { fail(e); }
    }

    // Asks inline (no browser dialog) before `then`.
    function confirmInline(question, label, then) {
      head.querySelectorAll(".confirm").forEach(c => c.remove());
      const c = el("div", question + " ", "confirm");
      const yes = button(label, () => { c.remove(); then(); }, "danger"); yes.id = "confirm-yes";
      c.append(yes, button("Cancel", () => c.remove()));
      head.append(c);
    }

    function actions(c) {
      const box = el("div", undefined, "actions");
      const mine = c.assigned_agent === me.agent;
      if (c.status === "waiting_for_agent") {
        box.append(button("Claim", () => act("claim")));
        box.append(button("Give back to the bot", () => act("give-back")));
        box.append(button("Resolve…", () => confirmInline("Nobody has claimed this chat. Resolve it anyway?", "Resolve", () => act("resolve"))));
      } else if (c.status === "with_agent" && mine) {
        box.append(button("Resolve", () => act("resolve")));
        box.append(button("Give back to the bot", () => act("give-back")));
        // Agents using the console now first; the others (offline, or
        // working from Telegram or Discord) can still be picked.
        const to = el("select"); to.id = "transfer-to";
        const pick = el("option", "transfer to…"); pick.value = ""; to.append(pick);
        const others = agents.filter(a => a !== me.agent);
        [["online", others.filter(a => online.includes(a))], ["not in the console", others.filter(a => !online.includes(a))]]
          .forEach(([label, names]) => {
            if (!names.length) return;
            const g = el("optgroup"); g.label = label;
            names.forEach(a => { const o = el("option", a); o.value = a; g.append(o); });
            to.append(g);
          });
        box.append(to, button("Transfer", () => { if (to.value) act("transfer", { agent: to.value }); else err.textContent = "Pick the agent to transfer to."; }));
        const canned = el("input"); canned.placeholder = "canned reply"; canned.id = "canned-name"; canned.size = 10;
        box.append(canned, button("Send canned", () => { if (canned.value.trim()) act("canned", { name: canned.value.trim() }); else err.textContent = "Name the canned reply (prompts/canned/NAME.md)."; }));
      }
      return box;
    }

    // A resolved conversation can become a knowledge-base article (the
    // learning loop); offered prominently when the bot could not answer.
    function suggestBox(c, s) {
      const box = el("div", undefined, "suggest"); box.id = "suggest-box";
      if (s) {
        const what = s.status === "published" ? "published as " + s.published_slug
          : s.status === "dismissed" ? "dismissed" : "waiting for an admin's review";
        box.append(el("span", `Suggested article “${s.title}”: ${what}.`, "muted"));
        if (me.admin) box.append(button("Review", () => { show("suggest"); views.suggest.open(s.id); }));
        return box;
      }
      const gap = c.handoff_reason === "knowledge_gap";
      if (!c.first_human_response_at) {
        // An article is made from the agents' replies: none, nothing to make.
        if (gap) box.append(el("span", "The bot could not answer this, and no agent replied: there is no answer to make an article from.", "muted"));
        return box;
      }
      if (gap) box.append(el("span", "The bot could not answer this; an article from the answer lets it answer next time.", "hint"));
      const b = button("Suggest an article from this answer", async () => {
        b.disabled = true; b.textContent = "Drafting…"; err.textContent = "";
        try { await api("POST", `/conversations/${c.id}/suggest`); lastConversation = ""; await open(c.id); }
        catch (e) { fail(e); b.disabled = false; b.textContent = "Suggest an article from this answer"; }
      }, gap ? "primary" : undefined);
      b.id = "suggest-article";
      box.append(b);
      return box;
    }

    function line(entry) {
      if (entry.kind === "event") {
        const d = el("div", entry.text, "m event");
        d.title = new Date(entry.event.created_at).toLocaleString();
        return d;
      }
      const d = el("div", undefined, "m " + entry.role);
      d.append(el("span", entry.author || entry.role, "role"), document.createTextNode(entry.text));
      d.title = new Date(entry.created_at).toLocaleString();
      return d;
    }

    // The customer: channel, first seen, their conversations (newest
    // first, each with its status and CSAT; another one opens on click).
    function customerPanel(data) {
      const box = el("details", undefined, "customer-panel"); box.id = "customer-panel";
      const past = data.customer_conversations || [];
      const rated = past.filter(p => p.csat != null).map(p => p.csat);
      const day = at => new Date(at).toISOString().slice(0, 10);
      box.append(el("summary", `${data.customer.channel} customer since ${day(data.customer.created_at)} · ${past.length} conversation${past.length === 1 ? "" : "s"}${rated.length ? " · CSAT " + rated.join(", ") : ""}`));
      const ul = el("ul");
      past.forEach(p => {
        const li = el("li");
        const label = `${day(p.created_at)} — ${STATUS[p.status] || p.status}${p.handoff_reason ? " (" + p.handoff_reason + ")" : ""}${p.csat != null ? " — CSAT " + p.csat : ""}`;
        if (p.id === data.conversation.id) li.append(el("span", label + " (this one)", "muted"));
        else li.append(button(label, () => open(p.id), "link"));
        ul.append(li);
      });
      box.append(ul);
      return box;
    }

    // The conversation's tags (any agent adds or removes them; the search
    // finds them).
    function tagsBox(id, tags) {
      const box = el("div", undefined, "tags"); box.id = "tags";
      const change = async (method, path, body) => {
        err.textContent = "";
        try { await api(method, `/conversations/${id}/tags${path}`, body); lastConversation = ""; await open(id); refresh(); }
        catch (x) { fail(x); }
      };
      tags.forEach(t => {
        const chip = el("span", undefined, "tag"); chip.dataset.tag = t;
        const x = button("×", () => change("DELETE", "/" + encodeURIComponent(t)));
        x.setAttribute("aria-label", "Remove tag " + t);
        chip.append(el("span", "#" + t), x);
        box.append(chip);
      });
      const f = el("form", undefined, "inline");
      const input = el("input"); input.id = "tag-input"; input.placeholder = "add a tag"; input.size = 12; input.maxLength = 64;
      input.setAttribute("aria-label", "Add a tag");
      f.append(input);
      f.onsubmit = e => { e.preventDefault(); if (input.value.trim()) change("POST", "", { tag: input.value }); };
      box.append(f);
      return box;
    }

    // What the customer answered in the follow-up survey, as one line.
    function surveyLine(s) {
      if (!s) return null;
      const parts = [];
      if (s.csat !== null) parts.push("CSAT " + s.csat + "/5");
      if (s.ces !== null) parts.push("CES " + s.ces + "/7");
      if (s.nps !== null) parts.push("NPS " + s.nps + "/10");
      if (s.comment) parts.push("“" + s.comment + "”");
      const text = parts.length ? "Survey answered: " + parts.join(" · ")
        : s.state === "sent" ? "Survey sent, not answered yet" : null;
      if (!text) return null;
      const d = el("div", text, "m event survey"); d.id = "survey-line";
      return d;
    }

    async function open(id) {
      if (id !== current) { err.textContent = ""; lastConversation = ""; ta.value = ""; }
      current = id;
      list.querySelectorAll(".row").forEach(r => r.classList.toggle("active", r.dataset.id === id));
      let data;
      try { data = await api("GET", `/conversations/${id}`); } catch (e) { fail(e); return; }
      if (current !== id) return;
      const c = data.conversation;
      const key = JSON.stringify([c.status, c.assigned_agent, data.timeline.length, c.updated_at, data.suggestion && data.suggestion.status, data.survey, data.tags]);
      if (key === lastConversation) return;
      lastConversation = key;
      head.innerHTML = "";
      const title = el("div", undefined, "title");
      title.append(el("strong", data.customer.display_name || data.customer.external_id), ` on ${c.channel} — ${STATUS[c.status] || c.status}${c.assigned_agent ? " (" + c.assigned_agent + ")" : ""}`);
      if (c.handoff_reason) title.append(el("span", ` — reason: ${c.handoff_reason}${c.handoff_detail ? " (" + c.handoff_detail + ")" : ""}`, "muted"));
      head.append(title, customerPanel(data), tagsBox(c.id, data.tags || []), actions(c));
      if (c.status === "resolved") head.append(suggestBox(c, data.suggestion));
      // Keep the reader's place unless they were at the bottom.
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      const top = log.scrollTop;
      log.innerHTML = "";
      data.timeline.forEach(entry => log.append(line(entry)));
      const answers = surveyLine(data.survey);
      if (answers) log.append(answers);
      log.scrollTop = atBottom ? log.scrollHeight : top;
      const canWrite = c.status === "waiting_for_agent" || (c.status === "with_agent" && c.assigned_agent === me.agent);
      form.hidden = !canWrite && c.status !== "with_agent";
      // Someone else's chat takes notes only; one's own takes replies again.
      if (!canWrite) { cb.checked = true; cb.disabled = true; }
      else if (cb.disabled) { cb.checked = false; cb.disabled = false; }
    }

    form.onsubmit = async e => {
      e.preventDefault();
      if (!current || !ta.value.trim()) return;
      err.textContent = "";
      try {
        await api("POST", `/conversations/${current}/${cb.checked ? "note" : "reply"}`, { text: ta.value });
        ta.value = ""; lastConversation = "";
        log.scrollTop = log.scrollHeight;
        await open(current); refresh();
      } catch (x) { fail(x); }
    };
    let canned = [];
    let offered = [];
    let chosen = 0;
    function offer() {
      const m = /^\/(\S*)$/.exec(ta.value);
      offered = m ? canned.filter(c => c.name.toLowerCase().startsWith(m[1].toLowerCase())) : [];
      chosen = Math.min(chosen, Math.max(offered.length - 1, 0));
      picker.replaceChildren(...offered.map((c, i) => {
        const li = el("li"); li.id = "canned-" + i; li.setAttribute("role", "option");
        li.setAttribute("aria-selected", String(i === chosen));
        li.append(el("strong", "/" + c.name), " ", el("span", c.text.slice(0, 80), "muted"));
        li.onmousedown = ev => { ev.preventDefault(); pick(i); };
        return li;
      }));
      picker.hidden = offered.length === 0;
      ta.setAttribute("aria-expanded", String(!picker.hidden));
      if (!picker.hidden) ta.setAttribute("aria-activedescendant", "canned-" + chosen); else ta.removeAttribute("aria-activedescendant");
    }
    function pick(i) {
      const c = offered[i];
      if (!c) return;
      ta.value = c.text;
      offered = []; picker.hidden = true; ta.setAttribute("aria-expanded", "false"); ta.removeAttribute("aria-activedescendant");
      ta.focus();
    }
    ta.addEventListener("input", () => { chosen = 0; offer(); });
    ta.onkeydown = e => {
      if (!picker.hidden) {
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          chosen = (chosen + (e.key === "ArrowDown" ? 1 : offered.length - 1)) % offered.length;
          offer(); return;
        }
        if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") { e.preventDefault(); pick(chosen); return; }
        if (e.key === "Escape") { e.preventDefault(); picker.hidden = true; return; }
      }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    };

    alertBox.onchange = () => {
      localStorage.setItem("switchboard.alerts", alertBox.checked ? "on" : "");
      if (alertBox.checked && window.Notification && Notification.permission === "default") Notification.requestPermission();
    };
    alertBox.checked = localStorage.getItem("switchboard.alerts") === "on";
    let waitingSeen = null;
    async function watchWaiting() {
      if (!alertBox.checked) { waitingSeen = null; return; }
      let queue;
      try { queue = await api("GET", "/queue"); } catch (x) { return; }
      const waiting = (Array.isArray(queue) ? queue : queue.conversations || [])
        .filter(c => c.status === "waiting_for_agent").map(c => c.id);
      const fresh = waitingSeen ? waiting.filter(id => !waitingSeen.has(id)) : [];
      waitingSeen = new Set(waiting);
      if (!fresh.length) return;
      if (window.Notification && Notification.permission === "granted") {
        new Notification("New waiting chat" + (fresh.length > 1 ? "s (" + fresh.length + ")" : ""), { body: "Switchboard: someone is waiting for a person." });
      }
      try {
        const audio = new (window.AudioContext || window.webkitAudioContext)();
        const tone = audio.createOscillator(); tone.frequency.value = 880;
        tone.connect(audio.destination); tone.start(); tone.stop(audio.currentTime + 0.15);
      } catch (x) { /* no sound here */ }
    }

    // Changes are pushed (the event stream); the timers only poll while it
    // is down, and every 30 s for changes made by another process.
    let stream = null;
    let pushed = false;
    function changed() { refresh(); watchWaiting(); if (current && !root.hidden) open(current); }
    let agents = [];
    let online = [];
    function loadAgents() {
      return api("GET", "/agents").then(r => {
        agents = r.agents; online = r.online || [];
        if (byAgent.options.length === 1) agents.forEach(a => { const o = el("option", a); o.value = a; byAgent.append(o); });
      }).catch(() => {});
    }
    function activate() {
      loadAgents();
      api("GET", "/canned").then(r => { canned = r; }).catch(() => {});
      if (window.EventSource && !stream) {
        stream = new EventSource("/api/agent/events");
        stream.addEventListener("ready", () => { pushed = true; root.dataset.live = "true"; });
        stream.addEventListener("changed", changed);
        stream.onerror = () => { pushed = false; root.dataset.live = "false"; };
      }
      timers.forEach(clearInterval);
      timers = [
        setInterval(() => { if (!pushed) { refresh(); watchWaiting(); } }, 3000),
        setInterval(() => { if (!pushed && current && !root.hidden) open(current); }, 5000),
        setInterval(() => { loadAgents(); changed(); }, 30000),
      ];
      refresh();
      watchWaiting();
    }

    // Keyboard shortcuts (not while typing; "?" lists them).
    const SHORTCUTS = [
      ["j / ↓", "next conversation"], ["k / ↑", "previous conversation"],
      ["1–4", "Waiting, Mine, All open, Resolved"], ["/", "search"],
      ["r", "reply"], ["t", "add a tag"], ["c", "claim"], ["e", "resolve"], ["?", "these shortcuts"], ["Esc", "leave a field, close this"],
    ];
    const help = el("div", undefined, "shortcuts"); help.id = "shortcuts"; help.hidden = true;
    help.setAttribute("role", "dialog"); help.setAttribute("aria-label", "Keyboard shortcuts");
    help.append(el("h2", "Keyboard shortcuts"));
    const keys = el("dl"); SHORTCUTS.forEach(([k, what]) => keys.append(el("dt", k), el("dd", what)));
    help.append(keys, button("Close", () => { help.hidden = true; }));
    root.append(help);
    function step(by) {
      const rows = [...list.querySelectorAll(".row")];
      if (!rows.length) return;
      const at = rows.findIndex(r => r.dataset.id === current);
      const next = rows[at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + by))];
      next.scrollIntoView({ block: "nearest" });
      open(next.dataset.id);
    }
    function pressVisible(text) {
      const b = [...head.querySelectorAll(".actions button")].find(x => x.textContent === text || x.textContent === text + "…");
      if (b) b.click();
      return !!b;
    }
    document.addEventListener("keydown", e => {
      if (root.hidden || e.ctrlKey || e.metaKey || e.altKey) return;
      const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
      if (e.key === "Escape") { help.hidden = true; if (typing) e.target.blur(); return; }
      if (typing) return;
      const done = () => e.preventDefault();
      switch (e.key) {
        case "j": case "ArrowDown": step(1); done(); break;
        case "k": case "ArrowUp": step(-1); done(); break;
        case "1": case "2": case "3": case "4":
          tab = TABS[Number(e.key) - 1][0]; search.value = ""; status.value = ""; refresh(); done(); break;
        case "/": search.focus(); done(); break;
        case "r": if (!form.hidden) { ta.focus(); done(); } break;
        case "t": { const i = document.getElementById("tag-input"); if (i) { i.focus(); done(); } } break;
        case "c": if (pressVisible("Claim")) done(); break;
        case "e": if (pressVisible("Resolve")) done(); break;
        case "?": help.hidden = !help.hidden; done(); break;
      }
    });

    return { root, activate, open, refresh };
  }

  return { create };
})();
