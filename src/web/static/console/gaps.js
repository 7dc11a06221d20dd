"use strict";
// The knowledge-gap page (admins): questions the bot could not answer or
// whose answer got 👎 in a date range (and channel), grouped by their most
// common term with counts and examples, biggest group first (the same as
// `switchboard report gaps`). "Find articles" opens the knowledge-base
// editor searching for the term, to extend an article or write a new one.
const Gaps = (() => {
  const day = d => d.toISOString().slice(0, 10);

  function create() {
    const root = el("div", undefined, "dash view"); root.id = "gaps";
    const body = el("div", undefined, "dash-body");
    const form = el("form", undefined, "dash-filters"); form.id = "gaps-filters";
    const input = (label, id, type) => {
      const l = el("label", label); const i = el("input"); i.id = id; i.type = type; l.append(i); form.append(l); return i;
    };
    const today = new Date();
    const from = input("From", "gaps-from", "date");
    const to = input("To", "gaps-to", "date");
    from.value = day(new Date(today.getTime() - 29 * 86400000)); to.value = day(today);
    const channel = input("Channel (empty: all)", "gaps-channel", "text");
    const go = el("button", "Show"); go.type = "submit"; form.append(go);
    const err = el("div", undefined, "error"); err.id = "gaps-error"; err.setAttribute("role", "alert");
    const list = el("div", undefined, "dash-gaps"); list.id = "gaps-list";
    body.append(form, err, list);
    root.append(body);

    function findArticles(term) {
      const search = document.getElementById("kb-search");
      if (!search) return;
      search.value = term;
      show("kb");
      search.dispatchEvent(new Event("input"));
    }

    async function refresh() {
      err.textContent = "";
      const q = new URLSearchParams({ from: from.value, to: to.value, channel: channel.value.trim() });
      let d;
      try { d = await call("GET", "/api/admin/dashboard/gaps?" + q); }
      catch (e) { err.textContent = e.message; return; }
      list.innerHTML = "";
      const total = d.gaps.reduce((n, g) => n + g.count, 0);
      list.append(el("p", `${total} question${total === 1 ? "" : "s"} the bot could not answer or whose answer got 👎, from ${d.from} to ${d.to}.`, "muted"));
      d.gaps.forEach(g => {
        const row = el("div", undefined, "gap"); row.dataset.term = g.term;
        const head = el("div", undefined, "inline");
        head.append(el("span", `${g.count} × ${g.term}`, "title"), button("Find articles", () => findArticles(g.term)));
        const ul = el("ul"); g.examples.forEach(x => ul.append(el("li", x)));
        row.append(head, ul);
        list.append(row);
      });
    }
    form.onsubmit = e => { e.preventDefault(); refresh(); };

    return { root, activate: refresh };
  }

  return { create };
})();
