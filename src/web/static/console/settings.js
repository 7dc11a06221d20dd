"use strict";
// The settings view (admins): agents (role, linked Telegram/Discord
// accounts, whether a console password and an API token are set, and a
// form to set an agent's password), canned replies, hand-off rules and
// business hours, surveys, channels and the model. Everything but the
// passwords comes from config.toml and the environment and is shown
// read-only (change the file and restart); secrets are never sent here.
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

    async function refresh() {
      err.textContent = "";
      let s;
      try { s = await call("GET", "/api/admin/settings"); } catch (x) { err.textContent = x.message; return; }
      const section = (title, ...nodes) => { const h = el("h2", title); content.append(h, ...nodes); };
      content.replaceChildren(el("p", "From " + s.source + "; change config.toml and restart to edit them. Console passwords live in the database and are set here.", "muted"));
      section("Agents", table(["name", "role", "Telegram", "Discord", "API token", "console password", ""],
        s.agents.map(a => [a.name, a.admin ? "admin" : "agent", yes(a.telegram), yes(a.discord),
          a.api_token ? "set (" + a.token_env + ")" : "not set", a.password_set ? "set" : "not set", passwordForm(a.name)])));
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
