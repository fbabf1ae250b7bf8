// The crowd: every technician with availability, skills, where they are, their KPIs (rating,
// acceptance, jobs), current jobs, and the policy pause with the review that lifts it; those
// who left, below, each with a way back; and one technician's record (?technician=id): every
// job held and offer made, counted, the latest listed, for the review, and retiring them.
"use strict";

const TECHNICIAN = param("technician");
// A roster file an admin chose on this page, checked and not yet imported (or just imported):
// {name, file, report}. Kept here, as every live change redraws the page.
let roster = null;

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)} %`;
}

function reviewForm(tech) {
  const note = el("input", {type: "text", name: "note", placeholder: "review note", "aria-label": "review note"});
  return el("div", {class: "row"}, note, action("Review and resume", async () => {
    if (!note.value.trim()) { toast("Write what the review found first.", true); return false; }
    await post(`/api/technicians/${encodeURIComponent(tech.id)}/review`, {note: note.value.trim()});
  }, {"data-action": "review"}));
}

function retireForm(tech) {
  // Leaving takes their offers and jobs back and closes their accounts: ask for a reason.
  const reason = el("input", {type: "text", name: "note", placeholder: "why they leave", "aria-label": "why they leave"});
  return el("div", {class: "row"}, reason, action("Retire", async () => {
    if (!reason.value.trim()) { toast("Write why they leave first.", true); return false; }
    const jobs = tech.active_jobs ? ` Their ${tech.active_jobs} open job(s) go back to dispatch.` : "";
    if (!window.confirm(`Retire ${tech.name}? No more offers, and their logins stop.${jobs}`)) return false;
    await post(`/api/technicians/${encodeURIComponent(tech.id)}/retire`, {reason: reason.value.trim()});
  }, {"data-action": "retire"}));
}

function nameCell(tech) {
  // The name opens their record.
  return el("td", {}, el("a", {href: `/ui/crowd?technician=${encodeURIComponent(tech.id)}`, "data-history": tech.id}, el("b", {}, tech.name)),
    el("div", {class: "muted"}, `${tech.id} · ${tech.kind}`));
}

function retiredRow(tech) {
  return el("tr", {"data-technician": tech.id, class: "retired"},
    nameCell(tech),
    el("td", {}, `${clock(tech.retired_at)}`, el("div", {class: "muted"}, tech.retired_reason)),
    el("td", {}, action("Reinstate", () => post(`/api/technicians/${encodeURIComponent(tech.id)}/reinstate`), {"data-action": "reinstate"})));
}

function availability(tech) {
  // The toggle, then the working hours: on shift until, or off shift (or on leave) until the
  // next one; the time off to come under them.
  const hours = tech.shifts.length ? el("div", {class: "muted"}, `${tech.shifts.join(", ")} (${tech.timezone})`) : null;
  const ahead = timeOffAhead(tech);
  const away = ahead.length ? el("div", {class: "muted", "data-time-off": ""}, `time off: ${ahead.join(", ")}`) : null;
  const change = tech.shift_changes_at ? ` until ${clock(tech.shift_changes_at)}` : "";
  if (!tech.available) return [pill("not available", "muted"), hours, away];
  if (tech.on_leave) return [pill(`on leave${change}`, "muted"), hours, away];
  if (!tech.on_shift) return [pill(`off shift${change}`, "muted"), hours, away];
  return [pill("available", "ok"), tech.shifts.length ? el("div", {class: "muted"}, `on shift${change}`) : null, hours, away];
}

function webhookTrouble(tech) {
  // An app that does not take its POSTs misses offers: say so where the operator looks.
  const hook = tech.webhook;
  if (!hook || (!hook.failing_since && !hook.given_up)) return null;
  const since = hook.failing_since ? `failing since ${clock(hook.failing_since)}` : "missed notices";
  const detail = [hook.last_error, hook.waiting ? `${hook.waiting} waiting` : null,
                  hook.given_up ? `${hook.given_up} given up today` : null].filter(Boolean).join(", ");
  return el("div", {class: "bad", "data-webhook": "failing"}, `webhook ${since}: ${detail}`);
}

function where(tech) {
  if (tech.lat !== null && tech.position_at) return `${tech.lat.toFixed(3)}, ${tech.lon.toFixed(3)} (${ago(tech.position_at)})`;
  return `home ${tech.home_lat.toFixed(3)}, ${tech.home_lon.toFixed(3)} · ${tech.radius_km} km`;
}

function importRoster(file, dryRun) {
  // The file's bytes as they are: the server reads UTF-8 or a spreadsheet's Windows-1252.
  return send("POST", `/api/technicians/import${dryRun ? "?dry_run=true" : ""}`, file, "text/csv");
}

function rosterPicker() {
  // Choosing a file checks it (nothing is saved yet) and shows what importing it would do.
  const file = el("input", {type: "file", accept: ".csv,text/csv", name: "roster", "aria-label": "roster file"});
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    try {
      roster = {name: chosen.name, file: chosen, report: await importRoster(chosen, true)};
    } catch (error) { toast(`${chosen.name}: ${error.message}`, true); }
    desk.refresh();
  });
  return el("label", {class: "file"}, "Import a roster (CSV): ", file);
}

function rosterReport() {
  // Who is new (a mistyped id would add someone), what changes for whom, what is left out.
  const {name, report: r} = roster;
  const line = (attrs, text) => el("li", attrs, text);
  const heading = r.dry_run
    ? `${name}: ${r.imported} row(s) to import${r.errors.length ? `, ${r.errors.length} left out (below)` : ""}. Nothing is saved yet.`
    : `${name}: ${r.imported} row(s) imported${r.errors.length ? `, ${r.errors.length} left out (below)` : ""}.`;
  const changed = Object.entries(r.changed);
  return el("section", {class: "panel", id: "import", "data-state": r.dry_run ? "checked" : "imported"},
    el("h3", {}, heading),
    el("ul", {},
      r.created.length ? line({"data-created": ""}, `${r.created.length} new: ${r.created.join(", ")}`) : null,
      changed.length ? line({"data-changed": ""}, `${changed.length} changed: ${changed.map(([id, fields]) => `${id} (${fields.join(", ")})`).join("; ")}`) : null,
      r.unchanged ? line({class: "muted"}, `${r.unchanged} unchanged`) : null,
      r.retired.length ? line({}, `retired, and they stay retired: ${r.retired.join(", ")}`) : null),
    r.errors.length ? table("import-errors", ["Row", "Technician", "What is wrong"], r.errors.map((e) =>
      el("tr", {}, el("td", {class: "num"}, String(e.row)), el("td", {}, e.technician_id || "–"), el("td", {}, e.error))), "") : null,
    el("div", {class: "row"},
      r.dry_run && r.imported ? action(`Import ${r.imported} row(s)`, async () => {
        roster = {...roster, report: await importRoster(roster.file, false)};
      }, {"data-action": "import"}) : null,
      action(r.dry_run ? "Cancel" : "Close", async () => { roster = null; return false; }, {"data-action": "close-import"})));
}

// Finding someone in a big crowd: by name or id, skill, kind and whether offers reach them;
// kept in the address like the desk's filters.
const STANDING = {receiving: "receiving offers", "not-receiving": "no offers now", "on-leave": "on leave", paused: "paused by policy"};

function wanted() {
  const query = new URLSearchParams(location.search);
  return {q: (query.get("q") || "").trim().toLowerCase(), skill: query.get("skill") || "",
          kind: query.get("kind") || "", standing: query.get("standing") || ""};
}

function matches(tech, f) {
  if (f.q && !tech.name.toLowerCase().includes(f.q) && !tech.id.toLowerCase().includes(f.q)) return false;
  if (f.skill && !tech.skills.includes(f.skill)) return false;
  if (f.kind && tech.kind !== f.kind) return false;
  if (f.standing === "receiving" && !canGo(tech)) return false;
  if (f.standing === "not-receiving" && canGo(tech)) return false;
  if (f.standing === "on-leave" && !tech.on_leave) return false;
  return f.standing !== "paused" || tech.paused;
}

let lastDrawn = null;  // the crowd and their jobs as last read: filtering draws from it

function filterBar() {
  // Made once and kept (redraws leave it alone, so typing a name keeps the cursor).
  const f = new URLSearchParams(location.search);
  const select = (name, label, options) => {
    const node = el("select", {name, "aria-label": label}, el("option", {value: ""}, `${label}: all`),
      ...Object.entries(options).map(([value, text]) => el("option", {value, selected: f.get(name) === value}, `${label}: ${text}`)));
    node.addEventListener("change", () => { setParam(name, node.value); draw(); });
    return node;
  };
  const search = el("input", {type: "search", name: "q", value: f.get("q") || "", placeholder: "name or id", "aria-label": "find a technician"});
  search.addEventListener("input", () => { setParam("q", search.value.trim()); draw(); });
  return el("div", {id: "crowd-filters", class: "row"}, search,
    select("skill", "Skill", {}), select("kind", "Kind", {crowd: "crowd", staff: "staff"}),
    select("standing", "Offers", STANDING));
}

function skillOptions(techs) {
  // The skill filter lists the skills the crowd holds (redrawn only when they change).
  const node = document.querySelector("#crowd-filters select[name=skill]");
  const skills = [...new Set(techs.flatMap((t) => t.skills))].sort();
  if (node.dataset.skills === skills.join(",")) return;
  node.dataset.skills = skills.join(",");
  const chosen = new URLSearchParams(location.search).get("skill") || "";
  node.replaceChildren(el("option", {value: ""}, "Skill: all"),
    ...skills.map((skill) => el("option", {value: skill, selected: skill === chosen}, `Skill: ${skill}`)));
}

async function refresh() {
  const [techs, page] = await Promise.all([api("/api/technicians"), api("/api/tickets?status=open&limit=500")]);
  lastDrawn = {techs, page};
  draw();
}

function draw() {
  const {techs, page} = lastDrawn;
  const jobs = {};
  for (const t of page.items) if (t.technician_id) (jobs[t.technician_id] = jobs[t.technician_id] || []).push(t);
  const retired = techs.filter((t) => t.retired_at);
  const active = techs.filter((t) => !t.retired_at);
  const f = wanted();
  const shown = active.filter((t) => matches(t, f));
  const rows = shown.map((tech) => el("tr", {"data-technician": tech.id, class: tech.paused ? "paused" : ""},
    nameCell(tech),
    el("td", {}, availability(tech)),
    el("td", {}, tech.skills.join(", "),
       Object.keys(tech.certifications).length ? el("div", {class: "muted"},
         Object.entries(tech.certifications).map(([skill, until]) => `${skill} until ${until}`).join(", ")) : null,
       certificationsDue(tech)),
    el("td", {}, where(tech)),
    el("td", {class: "num"}, tech.rating_count ? [`${tech.rating.toFixed(2)} ★`, el("div", {class: "muted"}, `${tech.rating_count} rating(s)`)] : el("span", {class: "muted"}, "not rated yet")),
    el("td", {class: "num"}, percent(tech.acceptance_rate)),
    el("td", {class: "num"}, `${tech.active_jobs} / ${tech.capacity}`),
    el("td", {}, ...(jobs[tech.id] || []).map((t) => el("div", {}, el("a", {href: `/ui/ticket?id=${t.id}`}, `#${t.id}`), ` ${t.title} `, pill(t.state)))),
    el("td", {}, tech.paused ? [el("div", {class: "bad"}, `paused: ${tech.paused_reason}`), reviewForm(tech)]
                             : el("span", {class: "muted"}, canGo(tech) ? "receiving offers" : "no offers now"),
       webhookTrouble(tech))));
  const available = techs.filter(canGo).length;
  const paused = techs.filter((t) => t.paused && !t.retired_at).length;
  const busy = techs.reduce((sum, t) => sum + t.active_jobs, 0);
  counts([[techs.length - retired.length, "technicians"], [available, "available", "ok"], [busy, "jobs in progress"], [paused, "paused", paused ? "bad" : ""]]);
  const focused = document.activeElement && document.activeElement.name === "note";
  if (focused) return;  // do not wipe a review note being typed; the next change redraws
  // The roster as the CSV the import reads, to edit and import again (admins).
  const admin = desk.me && desk.me.role === "admin";
  const none = active.length ? "Nobody matches the filters."
    : retired.length ? "Nobody active: every technician is retired (below)."
    : admin ? "No technicians yet: import a roster (CSV) above." : "No technicians yet: an admin imports them.";
  const main = document.getElementById("main");
  if (!document.getElementById("crowd-filters")) {
    main.replaceChildren(el("div", {id: "crowd-head"}), filterBar(), el("div", {id: "crowd-body"}));
  }
  skillOptions(active);
  const head = document.getElementById("crowd-head");
  const body = document.getElementById("crowd-body");
  head.replaceChildren();
  body.replaceChildren();
  add(head, el("h2", {}, "Crowd ",
      admin ? [el("a", {href: "/api/technicians/export", download: "technicians.csv", "data-action": "export"}, "Download the roster (CSV)"), rosterPicker()] : null),
    admin && roster ? rosterReport() : null);
  add(body, shown.length < active.length ? el("p", {class: "muted", id: "crowd-shown"}, `Showing ${shown.length} of ${active.length}.`) : null,
    el("table", {id: "crowd"},
      el("thead", {}, el("tr", {}, ...["Technician", "Availability", "Skills", "Where", "Rating", "Acceptance", "Jobs", "Current jobs", "Policy"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", {colspan: 9, class: "muted"}, none))]))),
    ...(retired.length ? [el("h3", {}, `Retired (${retired.length})`),
      table("retired", ["Technician", "Retired", ""], retired.map(retiredRow), "")] : []));
}

function arrival(job) {
  if (job.on_site_in_time === null) return el("span", {class: "muted"}, "–");
  return pill(`${clock(job.on_site_at)}${job.on_site_in_time ? "" : " (late)"}`, job.on_site_in_time ? "ok" : "bad");
}

function jobRow(job) {
  return el("tr", {"data-job": job.ticket_id},
    el("td", {}, el("a", {href: `/ui/ticket?id=${job.ticket_id}`}, `#${job.ticket_id}`), ` ${job.title}`,
       el("div", {class: "muted"}, job.category)),
    el("td", {}, clock(job.assigned_at), el("div", {class: "muted"}, job.assigned_how)),
    el("td", {}, arrival(job)),
    el("td", {}, pill(job.ending, job.ending === "handed on" ? "warn" : job.ending.replace(" ", "-")),
       job.end_reason ? el("div", {class: "muted"}, job.end_reason) : null),
    el("td", {class: "num"}, job.rating ? "★".repeat(job.rating) : el("span", {class: "muted"}, "–")));
}

function offerRow(offer) {
  return el("tr", {"data-offer": offer.id},
    el("td", {}, el("a", {href: `/ui/ticket?id=${offer.ticket_id}`}, `#${offer.ticket_id}`), ` ${offer.title}`),
    el("td", {}, clock(offer.offered_at), el("div", {class: "muted"}, `${offer.stage} · ETA ${Math.round(offer.eta_min)} min`)),
    el("td", {}, pill(offer.state), offer.reason ? el("div", {class: "muted"}, offer.reason) : null));
}

function changeRow(change) {
  const kinds = {paused: "bad", reviewed: "ok", retired: "muted", reinstated: "ok"};
  return el("tr", {"data-change": change.kind},
    el("td", {}, clock(change.at)), el("td", {}, pill(change.kind, kinds[change.kind])),
    el("td", {}, change.actor), el("td", {}, change.reason || el("span", {class: "muted"}, "–")));
}

function table(id, headings, rows, empty) {
  return el("table", {id},
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", {colspan: headings.length, class: "muted"}, empty))])));
}

async function record() {
  const {technician: tech, totals, jobs, offers, changes} = await api(`/api/technicians/${encodeURIComponent(TECHNICIAN)}/history?limit=100`);
  const held = totals.jobs;
  counts([[held.held, "jobs"], [held.resolved, "resolved", "ok"], [held.handed_on, "handed on", "warn"],
          [held.on_site_in_time, "on site in time", "ok"], [held.on_site_late, "arrived late", "bad"], [totals.offers, "offers"],
          [totals.offers_by_state.declined || 0, "declined", "bad"], [totals.offers_by_state.expired || 0, "let lapse", "bad"]]);
  if (document.activeElement && document.activeElement.name === "note") return;  // a reason being typed
  const main = document.getElementById("main");
  main.replaceChildren();
  add(main,
    el("p", {}, el("a", {href: "/ui/crowd"}, "← the crowd")),
    el("h2", {}, `${tech.name} `, el("span", {class: "muted"}, `${tech.id} · ${tech.kind}`), " ",
       tech.retired_at ? pill(`retired ${clock(tech.retired_at)}: ${tech.retired_reason}`, "muted")
         : tech.paused ? pill(`paused: ${tech.paused_reason}`, "bad") : null),
    tech.retired_at ? null : retireForm(tech),
    el("h3", {}, `Jobs (the latest ${jobs.length} of ${held.held})`),
    table("history-jobs", ["Ticket", "Assigned", "On site", "Ended", "Rating"], jobs.map(jobRow), "No job yet."),
    el("h3", {}, "Standing"),
    table("history-changes", ["When", "What", "Who", "Why"], changes.map(changeRow), "Never paused or retired."),
    el("h3", {}, `Offers (the latest ${offers.length} of ${totals.offers})`),
    Object.keys(totals.decline_reasons).length ? el("p", {id: "decline-reasons"}, "Why they said no: ",
      Object.entries(totals.decline_reasons).map(([reason, n]) => `${reason} ×${n}`).join(" · ")) : null,
    table("history-offers", ["Ticket", "Offered", "Answer"], offers.map(offerRow), "No offer yet."));
}

desk("crowd", TECHNICIAN ? record : refresh);
