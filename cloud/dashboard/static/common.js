// What every crowdfix page shares: API calls with the session cookie (and the CSRF header on
// changes), a small element builder, time formatting, and the operator desk's frame (who is
// logged in, navigation, live updates over server-sent events).
"use strict";

function csrf() {
  const match = document.cookie.match(/(?:^|; )crowdfix_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(path, options = {}) {
  const answer = await fetch(path, {credentials: "same-origin", ...options});
  if (answer.status === 401) { location.href = "/ui/login"; throw new Error("log in"); }
  if (!answer.ok) {
    const detail = (await answer.json().catch(() => ({}))).detail;
    throw new Error(typeof detail === "string" ? detail : (detail ? JSON.stringify(detail) : answer.statusText));
  }
  return answer.json();
}

// A change: the body as JSON, or as it is with another content type (a CSV file).
function send(method, path, body, type = "application/json") {
  return api(path, {method, body: type === "application/json" ? JSON.stringify(body) : body,
                    headers: {"Content-Type": type, "X-CSRF-Token": csrf()}});
}

function post(path, body) { return send("POST", path, body); }

function put(path, body) { return send("PUT", path, body); }

function canGo(tech) {
  // A technician who gets offers now: toggled available, on shift, not paused nor retired (as
  // /metrics counts).
  return tech.available && tech.on_shift && !tech.paused && !tech.retired_at;
}

function timeOffAhead(tech) {
  // The time off not over yet (a stretch's last day is its end, or the day itself); the
  // server drops what is over when the list is next saved.
  const today = new Date().toISOString().slice(0, 10);
  return tech.time_off.filter((leave) => leave.split("..").pop() >= today);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value; else node.setAttribute(key, value === true ? "" : value);
  }
  return add(node, ...children);
}

// Append the children that are there (null, undefined and false are skipped, where the DOM's
// own append would write them out as text).
function add(node, ...children) {
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

function minutesText(minutes) {
  if (Math.abs(minutes) < 1) return `${Math.round(minutes * 60)} s`;
  minutes = Math.round(minutes);
  if (Math.abs(minutes) < 60) return `${minutes} min`;
  const rest = Math.abs(minutes % 60);
  if (Math.abs(minutes) < 48 * 60) return `${Math.trunc(minutes / 60)} h${rest ? ` ${rest} min` : ""}`;
  return `${Math.round(minutes / 1440)} days`;
}

function age(iso) {
  return minutesText((Date.now() - Date.parse(iso)) / 60000);
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  return seconds < 90 ? `${Math.max(0, Math.round(seconds))} s ago` : `${age(iso)} ago`;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleString([], {dateStyle: "short", timeStyle: "medium"}) : "";
}

function certificationsDue(tech) {
  // Expired certifications (no jobs needing them) and those running out within 30 days.
  return (tech.certifications_due || []).map((due) => {
    const end = Date.parse(due.expires_at);  // the end of the day it names (UTC)
    const day = new Date(end - 1).toLocaleDateString([], {timeZone: "UTC", dateStyle: "medium"});
    const days = Math.ceil((end - Date.now()) / 86400000);
    const text = due.expired ? `${due.skill} certification expired ${day}: no ${due.skill} jobs until renewed`
                             : `${due.skill} certification expires ${day} (${days} day${days === 1 ? "" : "s"} left): renew it`;
    return el("div", {class: due.expired ? "bad" : "warn", "data-certification": due.skill}, text);
  });
}

// Keep a filter in the address (none: drop it), so a reload or a shared link shows the same.
function setParam(key, value) {
  const next = new URLSearchParams(location.search);
  if (value) next.set(key, value); else next.delete(key);
  history.replaceState(null, "", `${location.pathname}${next.toString() ? "?" + next : ""}`);
}

function param(name) {
  return new URLSearchParams(location.search).get(name);
}

function toast(message, bad = false) {
  const node = document.getElementById("toast");
  if (!node) return;
  node.textContent = message;
  node.className = bad ? "toast show bad" : "toast show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.className = "toast"; }, 4000);
}

// A button that runs an action, shows its error (the API's own words), then refreshes.
function action(label, run, attrs = {}) {
  const node = el("button", {type: "button", ...attrs}, label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    try { const done = await run(); if (done !== false) toast(`${label}: done`); }
    catch (error) { toast(`${label}: ${error.message}`, true); }
    finally { node.disabled = false; }
    if (desk.refresh) desk.refresh();
  });
  return node;
}

function pill(text, kind) {
  return el("span", {class: `pill ${kind || text}`}, text);
}

function counts(items) {
  document.getElementById("counts").replaceChildren(
    ...items.map(([n, label, kind]) => el("span", {class: `count ${n === 0 ? "" : kind || ""}`}, el("b", {}, String(n)), label)));
}

// The operator desk: check who is logged in, mark the page in the navigation, show the
// Grafana link when configured, draw the page and redraw it on every live change.
async function desk(name, refresh) {
  desk.refresh = refresh;
  const me = await api("/api/auth/me");
  if (me.role === "technician") { location.href = "/ui/tech"; return; }
  desk.me = me;
  document.getElementById("me").textContent = `${me.username} (${me.role})`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.classList.add("here");
  }
  const config = await api("/api/dashboard/config");
  desk.grafana = config.grafana_url;
  desk.slaWarningShare = config.sla_warning_share;
  if (config.grafana_url) {
    const link = document.getElementById("grafana");
    link.href = config.grafana_url;
    link.hidden = false;
  }
  let running = null;
  let again = false;
  const redraw = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      try { await refresh(); } catch (error) { toast(error.message, true); }
    })();
    await running;
    running = null;
    if (again) { again = false; redraw(); }
  };
  desk.refresh = redraw;
  await redraw();
  const stream = new EventSource("/api/stream");
  const live = document.getElementById("live");
  stream.addEventListener("open", () => {
    live.classList.add("on");
    // The server streams changes from the moment the stream opens: whatever changed since the
    // page last read (before the first open, or during a break) is read now.
    redraw();
  });
  stream.addEventListener("error", () => live.classList.remove("on"));
  stream.addEventListener("change", () => redraw());
  setInterval(redraw, 30000);  // telemetry, ages and countdowns move without a change event
}
