"use strict";
// The settings view (admins): agents (where they come from, role, linked
// Telegram/Discord accounts, online, whether a console password and an API
// token are set; add a console agent, invite links, set a password, change
// a console agent's role, disable or enable anyone), canned replies,
// hand-off rules and business hours, surveys, channels and the model.
// Everything but agents' accounts comes from config.toml and the
// environment and is shown read-only (change the file and restart);
// secrets are never sent here.
const SettingsView = (() => {
  function create() {
    const root = el("div", undefined, "dash view"); root.id = "settings";
    const body = el("div", undefined, "dash-body");
    const err = el("div", undefined, "error"); err.id = "settings-error"; err.setAttribute("role", "alert");
    const content = el("div"); content.id = "settings-content";
    body.append(err, content);
    root.append(body);

    const yes = v => v ? "yes" : "no";
    function table(headers, rows) {
      const t = el("table", undefined, "settings-table");
      const tr = el("tr"); headers.forEach(h => tr.append(el("th", h))); t.append(tr);
      rows.forEach(r => { const row = el("tr"); r.forEach(c => { const td = el("td"); if (c instanceof Node) td.append(c); else td.textContent = c; row.append(td); }); t.append(row); });
      return t;
    }
    function pairs(obj) {
      return table(["setting", "value"], Object.entries(obj).map(([k, v]) =>
        [k, v === null || v === undefined ? "—" : Array.isArray(v) ? (v.length ? v.join(", ") : "—") : String(v)]));
    }
    function passwordForm(name) {
      const f = el("form", undefined, "inline"); f.dataset.agent = name;
      const input = el("input"); input.type = "password"; input.autocomplete = "new-password";
      input.placeholder = "new password"; input.setAttribute("aria-label", "New password for " + name);
      const go = el("button", "Set password"); go.type = "submit";
      const said = el("span", "", "muted");
      f.append(input, go, said);
      f.onsubmit = async e => {
        e.preventDefault(); said.textContent = ""; err.textContent = "";
        try {
          await call("POST", "/api/admin/settings/agents/" + encodeURIComponent(name) + "/password", { password: input.value });
          input.value = ""; said.textContent = "set; their sessions were ended";
          refresh();
        } catch (x) { said.textContent = x.message; }
      };
      return f;
    }

    // Runs an account change; shows its error inline and refreshes.
    async function change(path, body, said) {
      err.textContent = ""; if (said) said.textContent = "";
      try { const r = await call("POST", "/api/admin/settings/agents" + path, body); await refresh(); return r; }
      catch (x) { (said || err).textContent = x.message; return null; }
    }
    // Shows an invite's link, ready to copy.
    function showInvite(invite) {
      document.getElementById("invite-link")?.remove();
      const box = el("div", undefined, "invite"); box.id = "invite-link";
      const link = el("input"); link.readOnly = true; link.value = location.origin + invite.path;
      link.setAttribute("aria-label", "Invite link for " + invite.agent); link.size = 60;
      box.append(el("span", "Send this link to " + invite.agent + "; it works once, for 7 days: ", "muted"), link);
      err.after(box); link.focus(); link.select();
    }
    function addForm() {
      const f = el("form", undefined, "inline"); f.id = "add-agent";
      const name = el("input"); name.placeholder = "name"; name.required = true; name.setAttribute("aria-label", "New agent's name");
      const role = el("select"); role.setAttribute("aria-label", "Role");
      [["agent", "agent"], ["admin", "admin"]].forEach(([v, t]) => { const o = el("option", t); o.value = v; role.append(o); });
      const go = el("button", "Add and invite"); go.type = "submit";
      const said = el("span", "", "muted");
      f.append(name, role, go, said);
      f.onsubmit = async e => {
        e.preventDefault();
        const invite = await change("", { name: name.value.trim(), admin: role.value === "admin" }, said);
        if (invite) showInvite(invite);
      };
      return f;
    }
    function actions(a) {
      const box = el("div", undefined, "inline"); box.dataset.agent = a.name;
      const path = "/" + encodeURIComponent(a.name);
      const said = el("span", "", "muted");
      const self = a.name === me.agent;
      if (a.origin === "console" && !self) {
        const role = a.admin ? "agent" : "admin";
        box.append(button("Make " + role, () => change(path + "/role", { admin: !a.admin }, said)));
      }
      if (!self && a.disabled) box.append(button("Enable", () => change(path + "/disabled", { disabled: false }, said)));
      if (!self && !a.disabled) {
        // Asks in the page first (no browser dialog).
        const ask = button("Disable…", () => {
          const c = el("span", "Sign " + a.name + " out and refuse them on every channel? ", "confirm");
          const yes = button("Disable", () => change(path + "/disabled", { disabled: true }, said), "danger");
          c.append(yes, button("Cancel", () => { c.remove(); ask.hidden = false; }));
          ask.hidden = true; ask.after(c);
        });
        box.append(ask);
      }
      if (!a.disabled) {
        box.append(button("Invite link", async () => { const i = await change(path + "/invite", undefined, said); if (i) showInvite(i); }));
        box.append(passwordForm(a.name));
      }
      box.append(said);
      return box;
    }

    async function refresh() {
      err.textContent = "";
      let s;
      try { s = await call("GET", "/api/admin/settings"); } catch (x) { err.textContent = x.message; return; }
      const section = (title, ...nodes) => { const h = el("h2", title); content.append(h, ...nodes); };
      content.replaceChildren(el("p", "From " + s.source + "; change config.toml and restart to edit them. Agents added here, who is disabled and console passwords live in the database and are changed here.", "muted"));
      section("Agents", addForm(), table(["name", "from", "role", "status", "Telegram", "Discord", "API token", "console password", ""],
        s.agents.map(a => [a.name, a.origin === "config" ? "config.toml" : "console", a.admin ? "admin" : "agent",
          a.disabled ? "disabled" : a.online ? "online" : "offline", yes(a.telegram), yes(a.discord),
          a.api_token ? "set (" + a.token_env + ")" : "not set", a.password_set ? "set" : "not set", actions(a)])));
      section("Canned replies", el("p", "From " + s.canned.source + ", as you would send them.", "muted"),
        table(["name", "text"], s.canned.replies.map(c => ["/" + c.name, c.text])));
      section("Hand-off rules and business hours", pairs(s.handoff));
      section("Surveys", pairs(s.csat));
      section("Channels", pairs(s.channels));
      section("Model", pairs(s.model), pairs(s.embeddings));
      section("Storage", pairs({ database: s.database, knowledge_base: s.knowledge_base }));
    }

    return { root, activate: refresh, refresh };
  }

  return { create };
})();
