// The operator's desk: tickets by state (SLA countdown, assign) and the fleet (presence,
// health, faults, open tickets, key signal sparkline) with filters kept in the address.
"use strict";

const STATES = ["new", "dispatching", "escalated", "assigned", "en_route", "on_site"];
const LABELS = {new: "New", dispatching: "Dispatching", escalated: "Escalated", assigned: "Assigned",
                en_route: "En route", on_site: "On site"};
const FILTERS = {site_id: "Site", profile: "Profile", presence: "Presence", health: "Health"};
let technicians = [];
let pending = {};  // ticket id → the offer waiting for an answer
let siteNames = {};  // site id → its name, as operators know the shops

function siteName(id) {
  return siteNames[id] || id;
}
let layoutDone = false;

// The on-site clock, flagged at risk once the deployment's share of its time has gone (as the
// ticket's SLA clocks and /metrics count it: CROWDFIX_SLA_WARNING_SHARE).
function sla(ticket) {
  if (ticket.on_site_at) return el("span", {class: "sla"}, "on site");
  const opened = Date.parse(ticket.opened_at);
  const due = Date.parse(ticket.sla_arrive_by);
  const left = (due - Date.now()) / 60000;
  if (left < 0) return el("span", {class: "sla breach"}, `SLA breached ${minutesText(-left)} ago`);
  const atRisk = Date.now() >= opened + desk.slaWarningShare * (due - opened);
  return el("span", {class: atRisk ? "sla warn" : "sla"}, `on site due in ${minutesText(left)}`);
}

function assignForm(ticket) {
  const select = el("select", {"aria-label": "technician"});
  for (const tech of technicians) select.append(el("option", {value: tech.id}, `${tech.name} (${tech.kind})`));
  const form = el("form", {}, select, el("button", {type: "submit"}, "Assign"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post(`/api/tickets/${ticket.id}/assign`, {technician_id: select.value, reason: "assigned on the desk"});
      toast(`#${ticket.id} assigned to ${select.value}`);
    } catch (error) { toast(error.message, true); }
    desk.refresh();
  });
  return form;
}

// Who has the offer now (one at a time), and how long they have to answer.
function offered(offer) {
  const left = Math.max(0, (Date.parse(offer.deadline) - Date.now()) / 60000);
  return el("div", {class: "meta", "data-offered": offer.technician_id},
    `offered to ${offer.technician_id} (${offer.stage}) · answer due in ${minutesText(left)}`);
}

function card(ticket) {
  const where = ticket.device_id
    ? el("a", {href: `/ui/device?id=${encodeURIComponent(ticket.device_id)}`}, ticket.device_id)
    : siteName(ticket.site_id);
  return el("div", {class: `card ${ticket.priority}`, "data-ticket": ticket.id},
    el("div", {class: "title"}, el("a", {href: `/ui/ticket?id=${ticket.id}`}, `#${ticket.id} ${ticket.title}`)),
    el("div", {class: "meta"}, pill(ticket.priority, `prio-${ticket.priority}`), ` ${ticket.category} · `, where,
       ticket.site_id && ticket.device_id ? ` · ${siteName(ticket.site_id)}` : ""),
    el("div", {class: "meta"}, `${age(ticket.opened_at)} old · `, sla(ticket),
       ticket.occurrences > 1 ? ` · ×${ticket.occurrences}` : "", ticket.flapping ? " · flapping" : ""),
    ticket.technician_id ? el("div", {class: "meta"}, `technician: ${ticket.technician_id}`,
      // On the way: when they expect to be there, as they said ("about 20 min away").
      ticket.state === "en_route" && ticket.state_reason ? el("span", {"data-eta": ""}, ` · ${ticket.state_reason} (${ago(ticket.updated_at)})`) : null) : null,
    pending[ticket.id] ? offered(pending[ticket.id]) : null,
    ticket.state === "escalated" && ticket.state_reason ? el("div", {class: "meta bad", "data-why": ""}, ticket.state_reason) : null,
    ["new", "dispatching", "escalated"].includes(ticket.state) && technicians.length ? assignForm(ticket) : null);
}

function renderBoard(tickets) {
  document.getElementById("board").replaceChildren(...STATES.map((state) => {
    const mine = tickets.filter((t) => t.state === state);
    return el("div", {class: "column", "data-state": state},
      el("h3", {}, `${LABELS[state]} (${mine.length})`), ...mine.map(card));
  }));
}

function keySignal(spark) {
  if (!spark) return el("span", {class: "muted"}, "no telemetry");
  return el("span", {class: "signal"}, sparkline(spark.points),
    el("span", {}, `${spark.name} ${niceNumber(spark.latest)}${spark.unit ? " " + spark.unit : ""}`));
}

function renderFleet(devices) {
  const rows = devices.map((d) => el("tr", {"data-device": d.id},
    el("td", {}, el("a", {href: `/ui/device?id=${encodeURIComponent(d.id)}`}, d.id),
       d.name ? el("div", {class: "muted"}, d.name) : null),
    el("td", {}, d.site_id ? siteName(d.site_id) : ""), el("td", {}, d.profile || ""),
    el("td", {class: `presence ${d.presence}`}, d.presence),
    el("td", {class: `health ${d.health}`, title: d.health_reasons.join("; ")}, d.health),
    el("td", {}, d.active_faults.length
      ? d.active_faults.map((f) => el("div", {class: `fault ${f.severity}`, title: f.summary}, `${f.code} (${f.severity})`))
      : el("span", {class: "muted"}, "none")),
    el("td", {class: "num"}, d.open_tickets ? String(d.open_tickets) : el("span", {class: "muted"}, "0")),
    el("td", {}, keySignal(d.spark)),
    el("td", {}, ago(d.last_seen_at))));
  if (!rows.length) rows.push(el("tr", {}, el("td", {colspan: 9, class: "muted"}, "No device matches the filters.")));
  document.querySelector("#fleet tbody").replaceChildren(...rows);
}

// One card per site: its devices by presence and health, and its open tickets; a click
// filters the fleet to it (and again clears the filter).
function renderSites(all, tickets) {
  const sites = {};
  for (const d of all) {
    const site = sites[d.site_id || ""] = sites[d.site_id || ""] || {devices: 0, online: 0, offline: 0, stale: 0, fault: 0, warning: 0, tickets: 0};
    site.devices += 1;
    if (d.presence in site) site[d.presence] += 1;
    if (d.health in site) site[d.health] += 1;
  }
  for (const t of tickets) if (sites[t.site_id || ""]) sites[t.site_id || ""].tickets += 1;
  const chosen = new URLSearchParams(location.search).get("site_id") || "";
  const cards = Object.entries(sites).sort(([a], [b]) => a.localeCompare(b)).map(([id, s]) => {
    const worst = s.offline || s.fault ? "bad" : s.stale || s.warning ? "warn" : "ok";
    const node = el("button", {type: "button", class: `site ${worst}${chosen && chosen === id ? " on" : ""}`, "data-site": id},
      el("b", {}, id ? siteName(id) : "(no site)"),
      el("span", {}, `${s.online}/${s.devices} online`),
      s.offline ? el("span", {class: "bad"}, `${s.offline} offline`) : null,
      s.fault ? el("span", {class: "bad"}, `${s.fault} fault`) : null,
      s.warning ? el("span", {class: "warn"}, `${s.warning} warning`) : null,
      el("span", {}, `${s.tickets} open ticket${s.tickets === 1 ? "" : "s"}`));
    node.addEventListener("click", () => {  // a second click on the chosen site drops it
      setParam("site_id", id && param("site_id") !== id ? id : "");
      desk.refresh();
    });
    return node;
  });
  document.getElementById("sites").replaceChildren(...cards);
}

function filterBar(all) {
  const query = new URLSearchParams(location.search);
  const options = {
    site_id: [...new Set(all.map((d) => d.site_id).filter(Boolean))].sort(),
    profile: [...new Set(all.map((d) => d.profile).filter(Boolean))].sort(),
    presence: ["online", "stale", "offline", "unknown"],
    health: ["ok", "warning", "fault"],
  };
  return Object.entries(FILTERS).map(([key, label]) => {
    const select = el("select", {name: key, "aria-label": label},
      el("option", {value: ""}, `${label}: all`),
      ...options[key].map((value) => el("option", {value, selected: query.get(key) === value}, `${label}: ${key === "site_id" ? siteName(value) : value}`)));
    select.addEventListener("change", () => { setParam(key, select.value); desk.refresh(); });
    return select;
  });
}

function layout() {
  if (layoutDone) return;
  layoutDone = true;
  document.getElementById("main").replaceChildren(
    el("section", {}, el("h2", {}, "Tickets"), el("div", {id: "board", class: "board"})),
    el("section", {}, el("h2", {}, "Fleet"), el("div", {id: "sites", class: "sites"}),
      el("div", {id: "filters", class: "filters"}),
      el("table", {id: "fleet"},
        el("thead", {}, el("tr", {}, ...["Device", "Site", "Profile", "Presence", "Health", "Active faults",
                                          "Open tickets", "Key signal (30 min)", "Last seen"].map((h) => el("th", {}, h)))),
        el("tbody"))));
}

async function refresh() {
  layout();
  const query = new URLSearchParams(location.search);
  const wanted = new URLSearchParams([...query].filter(([key]) => key in FILTERS));
  const [page, all, shown, techs, offers, sites] = await Promise.all([
    api("/api/tickets?status=open&limit=500"), api("/api/fleet?sparklines=false"),
    api(`/api/fleet?${wanted}`), api("/api/technicians"), api("/api/offers?state=pending&brief=true"),
    api("/api/sites")]);
  siteNames = Object.fromEntries(sites.map((s) => [s.id, s.name]));
  technicians = techs.filter(canGo);
  pending = Object.fromEntries(offers.map((o) => [o.ticket_id, o]));
  renderBoard(page.items);
  // In a background tab, the title counts what needs an operator: escalated or late tickets.
  const urgent = page.items.filter((t) => t.state === "escalated"
    || (!t.on_site_at && Date.parse(t.sla_arrive_by) < Date.now())).length;
  document.title = `${urgent ? `(${urgent}) ` : ""}crowdfix · operator desk`;
  renderFleet(shown.devices);
  renderSites(all.devices, page.items);
  if (!document.querySelector("#filters select:focus")) document.getElementById("filters").replaceChildren(...filterBar(all.devices));
  const c = shown.counts;
  counts([[c.online || 0, "online", "ok"], [c.stale || 0, "stale", "warn"], [c.offline || 0, "offline", "bad"],
          [c.warning || 0, "warning", "warn"], [c.fault || 0, "fault", "bad"], [page.total, "open tickets"]]);
}

desk("", refresh);
