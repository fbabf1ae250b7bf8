// A ticket: what is wrong (the automatic description and telemetry snapshot), its SLA clocks,
// why the dispatcher chose whom (every offer with the candidates and their scores), the audit
// trail, and the operator's actions: assign or reassign, escalate, cancel, resolve, rate.
"use strict";

const TICKET = Number(param("id"));
let requesterLink = "";  // made on this page; shown until the ticket is rated
const OPEN = ["new", "dispatching", "escalated", "assigned", "en_route", "on_site"];

function reasonInput() {
  return el("input", {type: "text", name: "reason", placeholder: "reason (for the audit trail)", "aria-label": "reason"});
}

function transition(ticket, to, label, reason) {
  return action(label, async () => {
    const why = reason.value.trim() || `${label.toLowerCase()} on the desk`;
    await post(`/api/tickets/${ticket.id}/transitions`, {to, reason: why});
  }, {"data-action": to});
}

// Who to assign by hand: those the latest offer ranked for this ticket first, in its order
// (eligible with their ETA, or the first reason not), then everyone else by name; in a big
// crowd the right people are at the top, not somewhere in a list of hundreds.
function technicianChoice(ticket, technicians, offers) {
  const others = technicians.filter((t) => t.id !== ticket.technician_id && !t.retired_at);
  const byId = Object.fromEntries(others.map((t) => [t.id, t]));
  const label = (t) => `${t.name} (${t.kind}${!t.available ? ", not available" : t.on_shift ? "" : t.on_leave ? ", on leave" : ", off shift"}${t.paused ? ", paused" : ""})`;
  const latest = offers.find((o) => o.candidates.length);
  const ranked = latest ? latest.candidates.filter((c) => byId[c.technician_id]) : [];
  const rankedIds = new Set(ranked.map((c) => c.technician_id));
  // What the search box matches: name, id and skills, in lower case.
  const option = (t, note) => el("option", {value: t.id, "data-find": [t.name, t.id, ...t.skills].join(" ").toLowerCase().split(/\s+/).join(" ")},
    note ? `${label(t)} · ${note}` : label(t));
  const rest = others.filter((t) => !rankedIds.has(t.id))
    .sort((a, b) => a.name.localeCompare(b.name)).map((t) => option(t));
  const select = el("select", {"aria-label": "technician", name: "technician"});
  if (!ranked.length) { select.append(...rest); return select; }
  return add(select,
    el("optgroup", {label: `As ranked for the offer of ${clock(latest.offered_at)}`},
      ...ranked.map((c) => option(byId[c.technician_id], c.eligible ? `ETA ${Math.round(c.eta_min)} min` : c.reasons[0]))),
    rest.length ? el("optgroup", {label: "Everyone else"}, ...rest) : null);
}

// A search box for the list of whom to assign (a crowd of thousands): every word typed must
// begin a word of a technician's name, their id or one of their skills ("mei" finds Ana
// Meier, "elec 4" E 4 the electrician). Those who match stay in the list, in its order, and
// the first of them is chosen; with nobody matching, nobody is chosen.
function technicianSearch(select) {
  const options = [...select.options];
  const words = new Map(options.map((o) => [o, o.dataset.find.split(" ")]));
  const found = el("span", {class: "muted", id: "assign-found"});
  const box = el("input", {type: "search", name: "find", placeholder: "find by name, id or skill",
    "aria-label": "find a technician", autocomplete: "off"});
  box.addEventListener("input", () => {
    const typed = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = options.filter((o) => {
      o.hidden = !typed.every((t) => words.get(o).some((w) => w.startsWith(t)));
      return !o.hidden;
    });
    for (const group of select.querySelectorAll("optgroup")) group.hidden = ![...group.children].some((o) => !o.hidden);
    select.value = shown.length ? shown[0].value : "";
    found.textContent = typed.length ? (shown.length ? `${shown.length} of ${options.length} match` : "nobody matches") : "";
  });
  return [box, found];
}

function actions(ticket, technicians, offers) {
  const box = el("section", {class: "panel", id: "actions"}, el("h3", {}, "Actions"));
  const reason = reasonInput();
  if (OPEN.includes(ticket.state)) {
    const select = technicianChoice(ticket, technicians, offers);
    const verb = ticket.technician_id ? "Reassign" : "Assign";
    box.append(el("div", {class: "row"}, ...technicianSearch(select)), el("div", {class: "row"}, select, action(verb, () => {
      if (!select.value) throw new Error("nobody matches the search: clear it or look for someone else");
      return post(`/api/tickets/${ticket.id}/assign`, {technician_id: select.value, reason: reason.value.trim() || `${verb.toLowerCase()}ed on the desk`});
    }, {"data-action": "assign"})));
    const moves = el("div", {class: "row"});
    if (["new", "dispatching"].includes(ticket.state)) moves.append(transition(ticket, "escalated", "Escalate", reason));
    if (ticket.state === "escalated") moves.append(transition(ticket, "dispatching", "Dispatch again", reason));
    moves.append(transition(ticket, "resolved", "Resolve", reason), transition(ticket, "cancelled", "Cancel", reason));
    box.append(reason, moves);
  } else if (ticket.state === "resolved") {
    const stars = el("select", {"aria-label": "stars", name: "stars"},
      ...[5, 4, 3, 2, 1].map((n) => el("option", {value: n}, "★".repeat(n))));
    const rated = ticket.rating ? el("span", {}, `Rated ${"★".repeat(ticket.rating)}${ticket.rated_by === "requester" ? " by the requester" : ""}`) : null;
    add(box, el("div", {class: "row"}, rated ||
      [stars, action("Rate", () => post(`/api/tickets/${ticket.id}/rating`, {stars: Number(stars.value)}), {"data-action": "rate"}),
       ticket.technician_id ? action("Link for the requester", async () => {
         requesterLink = (await post(`/api/tickets/${ticket.id}/rating-link`, {})).url;
       }, {"data-action": "rating-link"}) : null]),
      !rated && requesterLink ? el("div", {class: "row", id: "requester-link"}, "Send this to the requester (works once, 7 days): ",
        el("input", {type: "text", readonly: true, value: requesterLink, "aria-label": "rating link"})) : null,
      reason, el("div", {class: "row"}, transition(ticket, "closed", "Close", reason), transition(ticket, "new", "Reopen", reason)));
  } else {
    box.append(el("p", {class: "muted"}, `The ticket is ${ticket.state}; nothing more to do.`));
  }
  return box;
}

function slaState(c, open) {
  if (c.met_at) {
    const margin = minutesText(Math.abs(c.remaining_s) / 60);
    return pill(c.breached ? `met ${clock(c.met_at)}, ${margin} late` : `met ${clock(c.met_at)}, ${margin} to spare`, c.breached ? "bad" : "ok");
  }
  if (c.breached) return pill(`breached ${minutesText(-c.remaining_s / 60)} ago`, "bad");
  if (!open) return pill("not needed: the ticket ended first", "muted");
  return pill(`${minutesText(c.remaining_s / 60)} left`, c.warning ? "warn" : "ok");
}

const ALERT_LABELS = {escalated: "escalated", onsite_warning: "on-site warning", onsite_breached: "on-site target passed"};

// What the operators' alert channel was told of this ticket, oldest first, and whether it still holds.
function alertsList(view) {
  if (!view.alerts.length) return null;
  return el("div", {id: "alerts"}, el("h4", {}, "Operators told"),
    el("ul", {}, ...view.alerts.slice().reverse().map((a) => el("li", {"data-alert": a.kind, "data-cleared": a.cleared_at ? "yes" : "no", title: a.summary},
      `${clock(a.at)} ${ALERT_LABELS[a.kind] || a.kind} `,
      a.cleared_at ? el("span", {class: "muted"}, `· over at ${clock(a.cleared_at)}`) : pill("holds", "warn")))));
}

function slaPanel(clocks, ticket, alerts) {
  const open = OPEN.includes(ticket.state);
  return el("section", {class: "panel", id: "sla"}, el("h3", {}, "SLA"),
    el("table", {}, el("tbody", {}, ...clocks.map((c) => el("tr", {},
      el("td", {}, c.target), el("td", {}, `due ${clock(c.due)}`), el("td", {}, slaState(c, open)))))),
    alertsList(alerts));
}

// One list entry of the snapshot as text: a reading ("room_c 4.1 C"), a fault, or its JSON.
function entryText(entry) {
  if (entry === null || typeof entry !== "object") return String(entry);
  if ("name" in entry && "value" in entry) return `${entry.name} ${niceNumber(entry.value)}${entry.unit ? " " + entry.unit : ""}`;
  if ("code" in entry) return `${entry.code}${entry.severity ? ` (${entry.severity})` : ""}${entry.summary ? `: ${entry.summary}` : ""}`;
  return JSON.stringify(entry);
}

function snapshotTable(snapshot) {
  const rows = [];
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    } else {
      const text = Array.isArray(value) ? (value.length ? value.map(entryText).join(" · ") : "none") : String(value);
      rows.push(el("tr", {}, el("th", {}, prefix.replaceAll("_", " ")), el("td", {}, text)));
    }
  };
  walk("", snapshot);
  return rows.length ? el("table", {class: "kv"}, el("tbody", {}, ...rows)) : el("p", {class: "muted"}, "No snapshot.");
}

function candidatesTable(offer, kinds) {
  const candidates = offer.candidates;
  const parts = [...new Set(candidates.flatMap((c) => Object.keys(c.parts || {})))];
  return el("table", {class: "candidates"},
    el("thead", {}, el("tr", {}, ...["Technician", "Kind", "Eligible", "Distance", "ETA", ...parts.map((p) => `${p} part`), "Score"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...candidates.map((c) => el("tr", {class: c.technician_id === offer.technician_id ? "offered" : c.eligible ? "" : "ineligible"},
      el("td", {}, c.technician_id, c.technician_id === offer.technician_id ? " ← offered" : ""),
      el("td", {}, kinds[c.technician_id] || ""),
      el("td", {}, c.eligible ? "yes" : el("span", {title: c.reasons.join("; ")}, `no: ${c.reasons.join("; ")}`)),
      el("td", {class: "num"}, `${c.distance_km} km`), el("td", {class: "num"}, `${c.eta_min} min`),
      ...parts.map((p) => el("td", {class: "num"}, c.parts && p in c.parts ? niceNumber(c.parts[p]) : "")),
      el("td", {class: "num"}, niceNumber(c.score))))));
}

// The technicians an offer's explanation does not list (a big crowd), counted by why.
function leftOut(counts) {
  const entries = Object.entries(counts || {});
  if (!entries.length) return null;
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  return el("p", {class: "muted", "data-left-out": ""},
    `Not listed: ${total} more technician${total === 1 ? "" : "s"} (`,
    entries.map(([why, n]) => `${n} ${why}`).join(", "), ").");
}

function offersPanel(offers, technicians) {
  const kinds = Object.fromEntries(technicians.map((t) => [t.id, t.kind]));
  if (!offers.length) return el("p", {class: "muted"}, "No offers yet: the dispatcher has not found anyone, or the ticket was assigned by hand.");
  return el("div", {}, ...offers.map((o) => el("details", {class: "offer", "data-offer-row": o.id, open: o === offers[0]},
    el("summary", {}, `${clock(o.offered_at)} · ${o.stage} · ${o.technician_id} · `, pill(o.state),
      ` · ETA ${Math.round(o.eta_min)} min · score ${niceNumber(o.score)}`, o.reason ? ` · ${o.reason}` : ""),
    o.candidates.length ? [candidatesTable(o, kinds), leftOut(o.left_out), el("p", {class: "muted"},
      ["crowd", "staff"].includes(o.stage)
        ? `Stage ${o.stage}: the best-scored eligible ${o.stage} technician is offered the job (higher is better; each part is weighted into the score).`
        : "The best-scored eligible technician of any kind is offered the job (higher is better; each part is weighted into the score).")] : el("p", {class: "muted"}, "No candidates recorded."))));
}

function auditTable(events) {
  return el("table", {id: "audit"},
    el("thead", {}, el("tr", {}, ...["Time", "Actor", "What", "Reason"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...events.map((e) => el("tr", {},
      el("td", {}, clock(e.at)), el("td", {}, e.actor),
      el("td", {}, e.from_state || e.to_state ? `${e.from_state || "·"} → ${e.to_state || "·"}` : e.kind,
        e.assigned_to ? el("span", {"data-assigned-to": e.assigned_to}, ` (to ${e.assigned_to})`) : null),
      el("td", {}, e.reason)))));
}

async function refresh() {
  if (!TICKET) { document.getElementById("main").replaceChildren(el("p", {}, "No ticket given: open one from the desk.")); return; }
  const [ticket, offers, clocks, technicians, alerts] = await Promise.all([
    api(`/api/tickets/${TICKET}`), api(`/api/tickets/${TICKET}/offers`), api(`/api/tickets/${TICKET}/sla`), api("/api/technicians"),
    api(`/api/alerts?ticket_id=${TICKET}&limit=20`)]);
  // The site by name, with its address (the operator may have to call or send someone).
  const site = ticket.site_id ? await api(`/api/sites/${encodeURIComponent(ticket.site_id)}`).catch(() => null) : null;
  document.title = `crowdfix · #${ticket.id} ${ticket.title}`;
  counts([[ticket.state, "state"], [ticket.priority, "priority"], [ticket.occurrences, "occurrences"]]);
  const focused = document.activeElement && document.activeElement.closest("#actions");
  const where = ticket.device_id ? el("a", {href: `/ui/device?id=${encodeURIComponent(ticket.device_id)}`}, ticket.device_id) : "";
  const page = [
    el("div", {class: "crumbs"}, el("a", {href: "/ui/"}, "Desk"), " › ", `#${ticket.id}`),
    el("h2", {}, `#${ticket.id} ${ticket.title} `, pill(ticket.state)),
    el("div", {class: "meta"}, `${ticket.priority} · ${ticket.category} · `, where,
       site ? el("span", {"data-site": site.id}, ` · ${site.name}${site.address ? `, ${site.address}` : ""}`) : ticket.site_id ? ` · site ${ticket.site_id}` : "",
       ` · opened ${clock(ticket.opened_at)} (${age(ticket.opened_at)} ago)`, ticket.technician_id ? ` · technician ${ticket.technician_id}` : "",
       ticket.parent_id ? el("span", {}, " · part of ", el("a", {href: `/ui/ticket?id=${ticket.parent_id}`}, `#${ticket.parent_id}`)) : "",
       ticket.children.length ? el("span", {}, " · groups ", ...ticket.children.map((id) => el("a", {href: `/ui/ticket?id=${id}`}, `#${id} `))) : ""),
    el("div", {class: "grid2"},
      el("section", {class: "panel"}, el("h3", {}, "What is wrong"), el("p", {class: "description", id: "description"}, ticket.description),
        ticket.resolution ? el("p", {}, el("b", {}, "Resolution: "), ticket.resolution) : null),
      el("div", {}, focused ? document.getElementById("actions") : actions(ticket, technicians, offers), slaPanel(clocks, ticket, alerts))),
    el("section", {class: "panel"}, el("h3", {}, "Telemetry snapshot"), snapshotTable(ticket.snapshot)),
    el("section", {class: "panel", id: "offers"}, el("h3", {}, "Dispatch: offers and why"), offersPanel(offers, technicians)),
    el("section", {class: "panel"}, el("h3", {}, "Audit trail"), auditTable(ticket.events)),
  ];
  document.getElementById("main").replaceChildren(...page);
}

desk("ticket", refresh);
