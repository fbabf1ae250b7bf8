// The technician's page: their own offers (with the time left to answer) and jobs, and the
// buttons to act on them; jobs taken from them lately (cancelled at the device, reassigned),
// with why. Polls every few seconds; the API only ever shows them their own.
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
  await calledOff(jobs);
}

async function start() {
  me = await api("/api/auth/me");
  document.getElementById("me").textContent = me.username;
  await refresh();
  setInterval(refresh, 3000);
}

start();
