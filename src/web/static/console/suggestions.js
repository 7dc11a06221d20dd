"use strict";
// The review queue of suggested articles (admins): drafts made from
// conversations agents answered (the learning loop). A draft opens with
// its title, slug and tags as fields and its Markdown beside the editor's
// live preview (rendered by the server as customers see answers, with
// `kb check` problems), above the customer's question and the agents'
// replies it was made from. Publishing writes it as a new article through
// the editor's path (recorded in its history; the bot answers from it at
// once); dismissing keeps it out of the queue.
const Suggestions = (() => {
  const api = (method, path, body) => call(method, "/api/admin/suggestions" + path, body);
  const STATUSES = [["pending", "Waiting for review"], ["published", "Published"], ["dismissed", "Dismissed"], ["all", "All"]];

  function create() {
    const root = el("div", undefined, "kb view"); root.id = "suggest";
    const side = el("div", undefined, "side");
    const filter = el("select"); filter.id = "suggest-filter";
    STATUSES.forEach(([v, l]) => { const o = el("option", l); o.value = v; filter.append(o); });
    const list = el("div", undefined, "list"); list.id = "suggest-list";
    side.append(filter, list);
    const main = el("div", undefined, "editor"); main.id = "suggest-editor";
    main.append(el("p", "Pick a suggested article to review it.", "muted"));
    root.append(side, main);

    let opened = null;
    let timer = null;

    async function refresh() {
      try {
        const data = await api("GET", "?status=" + encodeURIComponent(filter.value));
        list.innerHTML = "";
        if (!data.suggestions.length) list.append(el("div", filter.value === "pending" ? "Nothing waiting for review." : "None.", "muted empty"));
        data.suggestions.forEach(s => {
          const row = el("div", undefined, "row"); row.dataset.id = s.id;
          if (opened === s.id) row.classList.add("active");
          row.append(el("div", s.title, "title"));
          const meta = [s.status === "published" ? "published as " + s.published_slug : s.status, "suggested by " + s.created_by, new Date(s.created_at).toLocaleString()];
          if (s.by_model) meta.push("drafted by the model");
          row.append(el("div", meta.join(" · "), "muted small"));
          row.onclick = () => open(s.id);
          list.append(row);
        });
      } catch (e) { list.innerHTML = ""; list.append(el("div", e.message, "error")); }
    }
    filter.onchange = refresh;

    async function open(id) {
      let d;
      try { d = await api("GET", "/" + encodeURIComponent(id)); }
      catch (e) { main.innerHTML = ""; main.append(el("p", e.message, "error")); return; }
      opened = id;
      list.querySelectorAll(".row").forEach(r => r.classList.toggle("active", r.dataset.id === id));
      render(d);
    }

    function render(d) {
      const s = d.suggestion;
      const pending = s.status === "pending";
      main.innerHTML = "";
      const err = el("div", undefined, "error"); err.id = "suggest-error"; err.setAttribute("role", "alert");
      const field = (label, id, value) => {
        const l = el("label", label); const i = el("input"); i.id = id; i.value = value || ""; i.readOnly = !pending; l.append(i); return [l, i];
      };
      const [titleL, title] = field("Title", "suggest-title", s.title);
      const [slugL, slug] = field("Slug", "suggest-slug", s.slug);
      const [tagsL, tags] = field("Tags (comma-separated)", "suggest-tags", s.tags.join(", "));
      const fields = el("div", undefined, "fields"); fields.append(titleL, slugL, tagsL);
      const body = el("textarea"); body.id = "suggest-body"; body.value = s.body; body.readOnly = !pending; body.spellcheck = true;
      const preview = el("div", undefined, "preview"); preview.id = "suggest-preview";
      const panes = el("div", undefined, "panes"); panes.append(body, preview);
      const problems = el("ul", undefined, "problems"); problems.id = "suggest-problems";
      const actions = el("div", undefined, "actions");
      const done = el("span", undefined, "ok"); done.id = "suggest-done"; done.setAttribute("role", "status");
      const draft = () => ({
        title: title.value, slug: slug.value.trim(),
        tags: tags.value.split(",").map(t => t.trim()).filter(Boolean), body: body.value,
      });
      async function doPreview() {
        const x = draft();
        try {
          const r = await call("POST", "/api/admin/kb/preview", { slug: x.slug, front: { title: x.title, tags: x.tags }, body: x.body });
          preview.innerHTML = r.html; // sanitised by the server
          problems.innerHTML = "";
          r.problems.forEach(p => problems.append(el("li", `line ${p.line}: ${p.message}`, p.fatal ? "fatal" : "warn")));
        } catch (e) { err.textContent = e.message; }
      }
      if (pending) {
        [title, slug, tags, body].forEach(i => { i.oninput = () => { clearTimeout(timer); timer = setTimeout(doPreview, 250); }; });
        const save = button("Save draft", async () => {
          err.textContent = ""; done.textContent = "";
          try { await api("POST", "/" + s.id, draft()); done.textContent = "Draft saved."; refresh(); }
          catch (e) { err.textContent = e.message; }
        });
        save.id = "suggest-save";
        const publish = button("Publish", async () => {
          err.textContent = ""; done.textContent = ""; publish.disabled = true;
          try { await api("POST", `/${s.id}/publish`, draft()); await refresh(); await open(s.id); }
          catch (e) {
            publish.disabled = false;
            err.textContent = e.message;
            if (e.body && e.body.problems) { problems.innerHTML = ""; e.body.problems.forEach(p => problems.append(el("li", `line ${p.line}: ${p.message}`, p.fatal ? "fatal" : "warn"))); }
          }
        }, "primary");
        publish.id = "suggest-publish";
        const dismiss = button("Dismiss…", () => {
          actions.querySelectorAll(".confirm").forEach(c => c.remove());
          const confirm = el("span", "Dismiss this suggestion? ", "confirm");
          const yes = button("Dismiss", async () => {
            err.textContent = "";
            try { await api("POST", `/${s.id}/dismiss`); await refresh(); await open(s.id); }
            catch (e) { err.textContent = e.message; }
          }, "danger");
          yes.id = "suggest-dismiss-yes";
          confirm.append(yes, button("Cancel", () => confirm.remove()));
          actions.append(confirm);
        });
        dismiss.id = "suggest-dismiss";
        actions.append(publish, save, dismiss, done);
      } else {
        const when = s.decided_at ? " on " + new Date(s.decided_at).toLocaleString() : "";
        done.textContent = s.status === "published"
          ? `Published as ${s.published_slug} by ${s.decided_by}${when}.`
          : `Dismissed by ${s.decided_by}${when}.`;
        actions.append(done);
        if (s.status === "published") {
          actions.append(button("Open in the editor", () => {
            const search = document.getElementById("kb-search");
            if (!search) return;
            search.value = s.published_slug;
            show("kb");
            search.dispatchEvent(new Event("input"));
          }));
        }
      }
      const source = el("div", undefined, "source"); source.id = "suggest-source";
      source.append(el("h3", "From the conversation"));
      const c = d.conversation;
      const facts = [c.channel];
      if (c.handoff_reason) facts.push("handed off: " + c.handoff_reason);
      if (c.resolved_by) facts.push("resolved by " + c.resolved_by);
      facts.push(s.by_model ? "drafted by the model" : "drafted from the plain template");
      source.append(el("div", facts.join(" · "), "muted"));
      d.source.questions.forEach(q => { const m = el("div", undefined, "m customer"); m.append(el("span", "customer", "role"), document.createTextNode(q)); source.append(m); });
      d.source.replies.forEach(r => { const m = el("div", undefined, "m agent"); m.append(el("span", "agent", "role"), document.createTextNode(r)); source.append(m); });
      main.append(err, fields, panes, problems, actions, source);
      doPreview();
    }

    return { root, activate: refresh, open };
  }

  return { create };
})();
