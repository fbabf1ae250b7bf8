// KPIs: mean and median time to accept, to arrive and to resolve, SLA compliance, and tickets
// by category and by site over time.
"use strict";

let days = Number(param("days")) || 7;

function tile(label, value, sub, id) {
  return el("div", {class: "tile", id}, el("div", {class: "muted"}, label), el("div", {class: "big"}, value), el("div", {class: "muted"}, sub));
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function duration(d) {
  return d.count ? minutesText(d.mean_min) : "–";
}

function share(value) {
  return value === null ? "–" : `${Math.round(value * 1000) / 10} %`;
}

function complianceTable(id, heading, rows) {
  // Each category has its own targets: where the service level slips, by category and site.
  const names = Object.keys(rows);
  return el("section", {class: "panel", id}, el("h3", {}, heading),
    el("table", {},
      el("thead", {}, el("tr", {}, ...["", "Tickets", "Accepted in time", "On site in time", "Resolved in time", "Open past on-site target"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(names.length ? names.map((name) => {
        const r = rows[name];
        return el("tr", {"data-row": name}, el("td", {}, name), el("td", {class: "num"}, String(r.tickets)),
          ...[r.accepted_in_time, r.on_site_in_time, r.resolved_in_time].map((v) => el("td", {class: "num"}, share(v))),
          el("td", {class: `num ${r.breached_open ? "bad" : ""}`}, String(r.breached_open)));
      }) : [el("tr", {}, el("td", {colspan: 6, class: "muted"}, "No tickets in the period."))]))));
}

async function refresh() {
  const k = await api(`/api/kpis?days=${days}`);
  const picker = el("select", {"aria-label": "period"},
    ...[[1, "last 24 h"], [7, "last 7 days"], [30, "last 30 days"]].map(([d, label]) => el("option", {value: d, selected: d === days}, label)));
  picker.addEventListener("change", () => {
    days = Number(picker.value);
    history.replaceState(null, "", `?days=${days}`);
    desk.refresh();
  });
  const c = k.compliance;
  counts([[k.tickets, k.tickets === 1 ? "ticket" : "tickets"], [c.breached_open, "open past the on-site target", c.breached_open ? "bad" : ""]]);
  const hourly = k.bucket === "hour";
  document.getElementById("main").replaceChildren(
    el("h2", {}, "KPIs ", picker),
    el("div", {class: "tiles"},
      tile("Time to accept", duration(k.time_to_accept), `median ${k.time_to_accept.count ? minutesText(k.time_to_accept.median_min) : "–"} · ${plural(k.time_to_accept.count, "ticket")}`, "tta"),
      tile("Time to arrive", duration(k.time_to_arrive), `median ${k.time_to_arrive.count ? minutesText(k.time_to_arrive.median_min) : "–"} · ${plural(k.time_to_arrive.count, "ticket")}`, "tto"),
      tile("Time to resolve", duration(k.time_to_resolve), `median ${k.time_to_resolve.count ? minutesText(k.time_to_resolve.median_min) : "–"} · ${plural(k.time_to_resolve.count, "ticket")}`, "ttr"),
      tile("Accepted in time", share(c.accepted_in_time), "SLA accept target", "sla-accept"),
      tile("On site in time", share(c.on_site_in_time), "SLA arrive target", "sla-arrive"),
      tile("Resolved in time", share(c.resolved_in_time), "SLA resolve target", "sla-resolve")),
    el("div", {class: "grid2"},
      el("section", {class: "panel", id: "by-category"}, el("h3", {}, `Tickets by category, per ${k.bucket}`), stackedBars(k.buckets, k.by_category, {hourly})),
      el("section", {class: "panel", id: "by-site"}, el("h3", {}, `Tickets by site, per ${k.bucket}`), stackedBars(k.buckets, k.by_site, {hourly}))),
    el("div", {class: "grid2"},
      complianceTable("sla-by-category", "SLA by category", c.by_category),
      complianceTable("sla-by-site", "SLA by site", c.by_site)),
    el("p", {class: "muted"}, "Times run from the device's own event time; device tickets grouped under a site ticket count once, through it."));
}

desk("kpis", refresh);
