"use strict";
// The dashboard (admins): a date range and a channel, the totals (the same
// object `switchboard report --json` prints for that range), one chart per
// series drawn by the server as SVG (shown as images, so nothing in them
// runs) and a CSV download of each. The gaps' questions are on their own
// page (gaps.js).
const Dashboard = (() => {
  const BASE = "/api/admin/dashboard";
  const SERIES = [
    ["volume", "Volume by channel"], ["channels", "Conversations per channel"],
    ["csat", "CSAT"], ["nps", "NPS"], ["ces", "CES"],
    ["containment", "Containment and escalation"], ["handoff_reasons", "Hand-off reasons"],
    ["first_response", "First response p50/p90"], ["resolution", "Resolution p50/p90"],
    ["fcr", "First-contact resolution"], ["feedback", "Answers 👍/👎"], ["gaps", "Knowledge gaps"],
  ];
  const day = d => d.toISOString().slice(0, 10);

  function create() {
    const root = el("div", undefined, "dash view"); root.id = "dash";
    const form = el("form", undefined, "dash-filters"); form.id = "dash-filters";
    const input = (label, id, type) => {
      const l = el("label", label); const i = el("input"); i.id = id; i.type = type; l.append(i); form.append(l); return i;
    };
    const today = new Date();
    const from = input("From", "dash-from", "date");
    const to = input("To", "dash-to", "date");
    from.value = day(new Date(today.getTime() - 29 * 86400000)); to.value = day(today);
    const chL = el("label", "Channel"); const channel = el("select"); channel.id = "dash-channel"; chL.append(channel); form.append(chL);
    const go = el("button", "Show"); go.type = "submit"; form.append(go);
    const err = el("div", undefined, "error"); err.id = "dash-error"; err.setAttribute("role", "alert");
    const totals = el("div", undefined, "dash-totals"); totals.id = "dash-totals";
    const charts = el("div", undefined, "dash-charts"); charts.id = "dash-charts";
    const body = el("div", undefined, "dash-body");
    body.append(form, err, totals, charts);
    root.append(body);

    const query = () => {
      const q = new URLSearchParams({ from: from.value, to: to.value });
      if (channel.value) q.set("channel", channel.value);
      return q.toString();
    };
    const pct = v => v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%";
    const num = (v, unit) => v === null || v === undefined ? "—" : (Math.round(v * 10) / 10) + (unit || "");

    function figure(label, value, key) {
      const f = el("div", undefined, "figure"); if (key) f.dataset.key = key;
      f.append(el("div", value, "value"), el("div", label, "muted"));
      return f;
    }

    async function refresh() {
      err.textContent = "";
      let d;
      try { d = await call("GET", BASE + "?" + query()); }
      catch (e) { err.textContent = e.message; return; }
      const chosen = channel.value;
      channel.innerHTML = "";
      const all = el("option", "All channels"); all.value = ""; channel.append(all);
      d.channels.forEach(c => { const o = el("option", c); o.value = c; channel.append(o); });
      channel.value = chosen;
      const t = d.totals;
      totals.innerHTML = "";
      totals.append(
        figure("conversations", String(t.conversations), "conversations"),
        figure("CSAT (4–5)", num(t.csat_score, "%"), "csat_score"),
        figure("CSAT average", num(t.csat_average), "csat_average"),
        figure("NPS", num(t.nps)),
        figure("CES", num(t.ces_average)),
        figure("containment", pct(t.containment_rate)),
        figure("escalation", pct(t.escalation_rate)),
        figure("first response p50 / p90", num(t.first_response_secs_p50, "s") + " / " + num(t.first_response_secs_p90, "s")),
        figure("resolution p50 / p90", num(t.resolution_secs_p50, "s") + " / " + num(t.resolution_secs_p90, "s")),
        figure("first-contact resolution", pct(t.first_contact_resolution_rate)),
        figure("answers 👍 / 👎", d.up + " / " + d.down),
      );
      const q = query();
      charts.innerHTML = "";
      SERIES.forEach(([name, label]) => {
        const card = el("div", undefined, "chart"); card.dataset.series = name;
        const img = el("img"); img.alt = label; img.src = `${BASE}/chart/${name}?${q}`;
        const a = el("a", "CSV"); a.href = `${BASE}/csv/${name}?${q}`; a.setAttribute("download", "");
        card.append(img, a);
        charts.append(card);
      });
    }
    form.onsubmit = e => { e.preventDefault(); refresh(); };

    return { root, activate: refresh };
  }

  return { create };
})();
