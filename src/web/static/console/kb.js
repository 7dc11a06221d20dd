"use strict";
// The knowledge-base editor (admins): a searchable list of articles, and an
// editor with front matter as fields, the body in Markdown, a live preview
// rendered by the server exactly as customers see answers, `kb check`
// problems, rename, delete, and the history of changes with revert. Saving
// sends the hash of the version opened; a file changed since is refused
// (409) with a diff, and the draft stays in the editor.
const KbEditor = (() => {
  const kb = (method, path, body) => call(method, "/api/admin/kb" + path, body);

  function create() {
    const root = el("div", undefined, "kb view"); root.id = "kb";
    const side = el("div", undefined, "side");
    const search = el("input"); search.type = "search"; search.id = "kb-search"; search.placeholder = "Search articles";
    const newer = button("New article", () => openNew()); newer.id = "kb-new";
    const list = el("div", undefined, "list"); list.id = "kb-list";
    side.append(search, newer, list);
    const main = el("div", undefined, "editor"); main.id = "kb-editor";
    main.append(el("p", "Pick an article, or make a new one.", "muted"));
    root.append(side, main);

    let opened = null;   // {slug, hash} of the version being edited; hash null for a new one
    let timer = null;

    async function refresh() {
      try {
        const data = await kb("GET", "/articles?q=" + encodeURIComponent(search.value));
        list.innerHTML = "";
        if (!data.articles.length) list.append(el("div", "No articles match.", "muted"));
        data.articles.forEach(a => {
          const row = el("div", undefined, "row"); row.dataset.slug = a.slug;
          if (opened && opened.slug === a.slug) row.classList.add("active");
          row.append(el("div", a.title, "title"));
          row.append(el("div", a.slug + (a.tags.length ? " · " + a.tags.join(", ") : ""), "muted"));
          const stats = [];
          if (a.edited_at) stats.push("edited " + new Date(a.edited_at).toLocaleString() + (a.edited_by ? " by " + a.edited_by : ""));
          stats.push(`cited ${a.cited}× · 👍 ${a.up} · 👎 ${a.down}`);
          row.append(el("div", stats.join(" · "), "muted small"));
          if (a.problems) row.append(el("div", `⚠ ${a.problems} problem${a.problems > 1 ? "s" : ""}${a.broken ? " (not loaded: customers do not see it)" : ""}`, "warn small"));
          row.onclick = () => open(a.slug);
          list.append(row);
        });
      } catch (e) { list.textContent = e.message; }
    }
    search.oninput = () => { clearTimeout(search.t); search.t = setTimeout(refresh, 200); };

    function field(label, id, value) {
      const l = el("label", label); const i = el("input"); i.id = id; i.value = value || ""; l.append(i); return [l, i];
    }

    // The editor for `doc`: {slug, hash, front, body, problems, changes}.
    function render(doc) {
      opened = { slug: doc.slug, hash: doc.hash };
      main.innerHTML = "";
      const err = el("div", undefined, "error"); err.id = "kb-error"; err.setAttribute("role", "alert");
      const front = doc.front || {};
      const [slugL, slug] = field("Slug", "kb-slug", doc.slug);
      if (doc.hash) slug.readOnly = true;
      const [titleL, title] = field("Title", "kb-title", front.title);
      const [tagsL, tags] = field("Tags (comma-separated)", "kb-tags", (front.tags || []).join(", "));
      const [urlL, url] = field("URL", "kb-url", front.url);
      const [localeL, locale] = field("Locale", "kb-locale", front.locale);
      const fields = el("div", undefined, "fields"); fields.append(slugL, titleL, tagsL, urlL, localeL);
      const body = el("textarea"); body.id = "kb-body"; body.value = doc.body || ""; body.spellcheck = true;
      const preview = el("div", undefined, "preview"); preview.id = "kb-preview";
      const panes = el("div", undefined, "panes"); panes.append(body, preview);
      const problems = el("ul", undefined, "problems"); problems.id = "kb-problems";
      const diff = el("pre", undefined, "diff"); diff.id = "kb-diff"; diff.hidden = true;
      const actions = el("div", undefined, "actions");
      const save = button("Save", () => doSave()); save.id = "kb-save";
      const status = el("span", undefined, "ok"); status.id = "kb-status"; status.setAttribute("role", "status");
      actions.append(save, status);
      const draft = () => ({
        slug: slug.value.trim(),
        front: { title: title.value, tags: tags.value.split(",").map(t => t.trim()).filter(Boolean), url: url.value, locale: locale.value },
        body: body.value,
      });
      const showProblems = list => {
        problems.innerHTML = "";
        list.forEach(p => problems.append(el("li", `line ${p.line}: ${p.message}`, p.fatal ? "fatal" : "warn")));
      };
      async function doPreview() {
        try {
          const r = await kb("POST", "/preview", draft());
          preview.innerHTML = r.html; // sanitised by the server
          showProblems(r.problems);
        } catch (e) { err.textContent = e.message; }
      }
      const later = () => { clearTimeout(timer); timer = setTimeout(doPreview, 250); };
      [slug, title, tags, url, locale, body].forEach(i => { i.oninput = later; });
      async function doSave() {
        err.textContent = ""; status.textContent = ""; diff.hidden = true;
        try {
          const r = await kb("POST", "/save", { ...draft(), hash: opened.hash });
          opened = { slug: r.slug, hash: r.hash };
          slug.readOnly = true;
          status.textContent = r.change ? "Saved." : "No changes to save.";
          showProblems(r.problems || []);
          refresh(); history(r.slug);
        } catch (e) {
          status.textContent = "";
          err.textContent = e.message;
          if (e.body && e.body.problems) showProblems(e.body.problems);
          if (e.status === 409) {
            diff.textContent = e.body.diff || "";
            diff.hidden = false;
            const reload = button("Discard my draft and load the current version", () => open(opened.slug));
            reload.id = "kb-reload";
            err.append(" ", reload);
          }
        }
      }
      if (doc.hash) {
        const rename = el("div", undefined, "inline");
        const to = el("input"); to.id = "kb-rename-to"; to.placeholder = "new/slug";
        rename.append(to, button("Rename", async () => {
          err.textContent = "";
          try { const r = await kb("POST", "/rename", { from: opened.slug, to: to.value.trim(), hash: opened.hash }); await refresh(); open(r.slug); }
          catch (e) { err.textContent = e.message; if (e.body && e.body.diff) { diff.textContent = e.body.diff; diff.hidden = false; } }
        }));
        const del = button("Delete…", () => {
          const confirm = el("span", "Delete this article? ", "confirm");
          confirm.append(button("Delete", async () => {
            err.textContent = "";
            try { await kb("POST", "/delete", { slug: opened.slug, hash: opened.hash }); opened = null; main.innerHTML = ""; main.append(el("p", "Deleted.", "muted")); refresh(); }
            catch (e) { err.textContent = e.message; }
          }, "danger"), button("Cancel", () => confirm.remove()));
          actions.append(confirm);
        });
        del.id = "kb-delete";
        actions.append(rename, del);
      }
      const hist = el("div", undefined, "history"); hist.id = "kb-history";
      async function history(s) {
        try {
          const r = await kb("GET", "/changes?slug=" + encodeURIComponent(s));
          hist.innerHTML = "";
          if (!r.changes.length) return;
          hist.append(el("h3", "Changes"));
          r.changes.forEach(c => {
            const row = el("div", undefined, "change");
            row.append(el("span", `${new Date(c.created_at).toLocaleString()} · ${c.agent} · ${c.action}${c.previous_slug ? " (from " + c.previous_slug + ")" : ""}`));
            row.append(button("Diff", async () => {
              try { const d = await kb("GET", "/changes/" + c.id); diff.textContent = d.diff || "(no difference)"; diff.hidden = false; }
              catch (e) { err.textContent = e.message; }
            }));
            row.append(button("Revert", async () => {
              err.textContent = "";
              try { const v = await kb("POST", `/changes/${c.id}/revert`); await refresh(); if (v.hash) open(v.slug); else { main.innerHTML = ""; main.append(el("p", "Reverted: the article is gone again.", "muted")); } }
              catch (e) { err.textContent = e.message; if (e.body && e.body.diff) { diff.textContent = e.body.diff; diff.hidden = false; } }
            }));
            hist.append(row);
          });
        } catch (e) { err.textContent = e.message; }
      }
      main.append(err, fields, panes, problems, actions, diff, hist);
      if (doc.html !== undefined) preview.innerHTML = doc.html; // sanitised by the server
      showProblems(doc.problems || []);
      if (doc.hash) history(doc.slug); else doPreview();
      list.querySelectorAll(".row").forEach(r => r.classList.toggle("active", r.dataset.slug === doc.slug));
    }

    async function open(slug) {
      try { render(await kb("GET", "/article?slug=" + encodeURIComponent(slug))); }
      catch (e) { main.innerHTML = ""; main.append(el("p", e.message, "error")); }
    }

    function openNew() {
      render({ slug: "", hash: null, front: { title: "", tags: [] }, body: "# Title\n\n## A question customers ask\nThe answer.\n", problems: [] });
      document.getElementById("kb-slug").focus();
    }

    return { root, activate: refresh };
  }

  return { create };
})();
