// The technician's page: whether they receive offers now (and why not), going online or
// offline, sharing where they are, their working hours; their own offers (with the time left
// to answer) and jobs, and the buttons to act on them; jobs taken from them lately (cancelled
// at the device, reassigned), with why. Polls every few seconds; the API only ever shows them
// their own.
"use strict";

const NEXT = {assigned: ["en_route", "On my way"], en_route: ["on_site", "I'm on site"],
              on_site: ["resolved", "Fixed"]};

function button(label, action) {
  const node = el("button", {type: "button"}, label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    try { await action(); document.getElementById("error").textContent = ""; }
    catch (error) { document.getElementById("error").textContent = error.message; }
    refresh();
  });
  return node;
}

function offerCard(offer) {
  const left = Math.max(0, Math.round((Date.parse(offer.deadline) - Date.now()) / 1000));
  return el("div", {class: "card", "data-offer": offer.id},
    el("div", {class: "title"}, `#${offer.ticket_id} ${offer.title}`),
    el("div", {class: "meta"}, `about ${Math.round(offer.eta_min)} min away · answer within ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`),
    el("div", {class: "actions"},
      button("Accept", () => post(`/api/offers/${offer.id}/accept`, {})),
      button("Decline", () => post(`/api/offers/${offer.id}/decline`, {reason: "declined on the app"}))));
}

function jobCard(job) {
  const card = el("div", {class: "card", "data-job": job.id},
    el("div", {class: "title"}, `#${job.id} ${job.title}`),
    el("div", {class: "meta"}, `${job.state.replace("_", " ")} · ${job.category}`));
  const next = NEXT[job.state];
  if (next) card.append(el("div", {class: "actions"},
    button(next[1], () => post(`/api/jobs/${job.id}/progress`, {state: next[0]}))));
  if (job.state === "on_site" || (job.state === "resolved" && job.rating === null)) {
    card.append(links[job.id]
      ? el("div", {class: "rating-link"}, "Let the customer rate this job: ",
           el("a", {href: links[job.id].url, target: "_blank", rel: "noopener"}, "rating link"),
           el("img", {class: "qr", alt: "QR code of the rating link",
                      src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(links[job.id].qr_svg)}`}),
           el("div", {class: "muted"}, "They scan it with their phone's camera, or you send them the link; it works once, for 7 days."))
      : el("div", {class: "actions"}, button("Rating link for the customer", async () => {
          links[job.id] = await post(`/api/jobs/${job.id}/rating-link`, {});
        })));
  }
  return card;
}

const links = {};  // job id → the rating link made on this page (kept across redraws)

function setAvailability(technicianId, change) {
  return put(`/api/technicians/${encodeURIComponent(technicianId)}/availability`, change);
}

function receiving(tech) {
  // Whether offers reach them now, and if not, what would change it.
  const until = tech.shift_changes_at ? ` until ${clock(tech.shift_changes_at)}` : "";
  if (tech.paused) return ["bad", `Paused: ${tech.paused_reason}. An operator will review it with you.`];
  if (!tech.available) return ["muted", "Offline: you get no offers until you go online."];
  if (!tech.on_shift) return ["muted", `Off shift${until}: no offers until your next shift.`];
  return ["ok", `Receiving offers${until}.`];
}

function shareLocation(technicianId) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("This browser cannot tell where you are.")); return; }
    navigator.geolocation.getCurrentPosition(
      (where) => setAvailability(technicianId, {lat: where.coords.latitude, lon: where.coords.longitude})
        .then(resolve, reject),
      (error) => reject(new Error(`Location not shared: ${error.message}`)), {timeout: 10000});
  });
}

function statusNow(tech) {
  const [kind, text] = receiving(tech);
  const where = tech.position_at ? `location shared ${ago(tech.position_at)}` : "offers are measured from your home base";
  return el("div", {id: "status-now"},
    el("p", {class: `status ${kind}`, "data-receiving": kind === "ok" ? "yes" : "no"}, text),
    el("div", {class: "actions"},
      tech.available ? button("Go offline", () => setAvailability(tech.id, {available: false}))
                     : button("Go online", () => setAvailability(tech.id, {available: true})),
      button("Share my location", () => shareLocation(tech.id))),
    el("p", {class: "muted", "data-location": tech.position_at ? "shared" : "home"}, where),
    certificationsDue(tech));
}

let hoursShown = null;  // the hours as last drawn ("shifts|zone"); null: saved, draw anew
let hoursOpen = null;  // the section as they left it (null: open while no hours are set)

function hoursForm(tech) {
  // Drawn anew only when the server's hours change and nothing typed would be lost.
  const zoneNow = tech.shifts.length ? tech.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone;
  const hours = el("input", {type: "text", name: "shifts", value: tech.shifts.join("; "),
                             placeholder: "e.g. mon-fri 07:00-19:00; sat 08:00-12:00", "aria-label": "working hours"});
  const zone = el("input", {type: "text", name: "timezone", "aria-label": "time zone", value: zoneNow});
  const save = el("button", {type: "button"}, "Save hours");
  save.addEventListener("click", async () => {
    save.disabled = true;
    const shifts = hours.value.split(";").map((s) => s.trim()).filter(Boolean);
    try {
      await setAvailability(tech.id, {shifts, timezone: zone.value.trim() || "UTC"});
      document.getElementById("error").textContent = "";
      hoursShown = null;  // saved: draw what the server now has
    } catch (error) { document.getElementById("error").textContent = error.message; }
    finally { save.disabled = false; }
    refresh();
  });
  const open = hoursOpen === null ? !tech.shifts.length : hoursOpen;
  const section = el("details", {id: "status-hours", open: open || null},
    el("summary", {}, tech.shifts.length ? `Working hours: ${tech.shifts.join(", ")} (${tech.timezone})` : "Working hours: whenever you are online"),
    el("div", {class: "row"}, hours, zone, save),
    el("p", {class: "muted"}, "Leave empty to get offers whenever you are online. Days: mon-sun, a range (mon-fri) or a list (sat,sun); a shift may run past midnight (fri 22:00-06:00)."));
  section.addEventListener("toggle", () => { hoursOpen = section.open; });
  return section;
}

function typing() {
  const form = document.getElementById("status-hours");
  if (!form) return false;
  const inputs = [...form.querySelectorAll("input")];
  return form.contains(document.activeElement) || inputs.some((i) => i.value !== i.defaultValue);
}

async function status() {
  if (!me || !me.technician_id) return;
  const tech = await api(`/api/technicians/${encodeURIComponent(me.technician_id)}`);
  const panel = document.getElementById("status");
  const now = statusNow(tech);
  const drawn = `${tech.shifts.join("; ")}|${tech.timezone}`;
  if (!panel.firstChild) { panel.append(now, hoursForm(tech)); hoursShown = drawn; return; }
  document.getElementById("status-now").replaceWith(now);
  // Just saved (null), or changed elsewhere while nothing is being typed: draw the server's.
  if (hoursShown === null || (drawn !== hoursShown && !typing())) {
    document.getElementById("status-hours").replaceWith(hoursForm(tech));
    hoursShown = drawn;
  }
}

const RECENT_MS = 12 * 3600 * 1000;  // finished jobs stay here for the customer's rating link
const RECORD_EVERY_MS = 30000;  // their record is read again this often, or when a job goes
let me = null;
let held = "";  // the open jobs' ids at the last poll
let recordAt = 0;

function calledOffCard(job) {
  const how = job.ending === "cancelled" ? "cancelled" : "taken off you";
  return el("div", {class: "card", "data-called-off": job.ticket_id},
    el("div", {class: "title"}, `#${job.ticket_id} ${job.title}`),
    el("div", {class: "meta"}, `${how} ${ago(job.ended_at)}: ${job.end_reason || job.ended_by}`));
}

async function calledOff(jobs) {
  const ids = jobs.map((j) => j.id).join(",");
  if (!me || !me.technician_id) return;  // an account not bound to a technician has no record
  if (ids === held && Date.now() - recordAt < RECORD_EVERY_MS) return;
  held = ids;
  recordAt = Date.now();
  const record = await api(`/api/technicians/${encodeURIComponent(me.technician_id)}/history?limit=50&days=1`);
  const lately = record.jobs.filter((j) => ["cancelled", "handed on"].includes(j.ending)
    && j.ended_by !== me.technician_id && Date.now() - Date.parse(j.ended_at) < RECENT_MS);
  document.getElementById("called-off").replaceChildren(
    ...(lately.length ? lately.map(calledOffCard) : [el("p", {class: "muted"}, "Nothing called off lately.")]));
}

async function refresh() {
  const [offers, jobs, all] = await Promise.all([
    api("/api/offers?state=pending"), api("/api/jobs"), api("/api/jobs?status=all")]);
  const done = all.filter((j) => j.state === "resolved" && j.resolved_at && Date.now() - Date.parse(j.resolved_at) < RECENT_MS);
  const offerList = document.getElementById("offers");
  offerList.replaceChildren(...(offers.length ? offers.map(offerCard) : [el("p", {class: "muted"}, "No offers right now.")]));
  const jobList = document.getElementById("jobs");
  jobList.replaceChildren(...(jobs.length ? jobs.map(jobCard) : [el("p", {class: "muted"}, "No open jobs.")]));
  document.getElementById("done").replaceChildren(...(done.length ? done.map(jobCard) : [el("p", {class: "muted"}, "Nothing finished lately.")]));
  await Promise.all([calledOff(jobs), status()]);
}

async function start() {
  me = await api("/api/auth/me");
  document.getElementById("me").textContent = me.username;
  await refresh();
  setInterval(refresh, 3000);
}

start();
