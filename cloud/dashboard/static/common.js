// What every crowdfix page shares: API calls with the session cookie (and the CSRF header on
// changes), and a small element builder.
"use strict";

function csrf() {
  const match = document.cookie.match(/(?:^|; )crowdfix_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(path, options = {}) {
  const answer = await fetch(path, {credentials: "same-origin", ...options});
  if (answer.status === 401) { location.href = "/ui/login"; throw new Error("log in"); }
  if (!answer.ok) throw new Error((await answer.json().catch(() => ({}))).detail || answer.statusText);
  return answer.json();
}

function post(path, body) {
  return api(path, {method: "POST", body: JSON.stringify(body),
                    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}});
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}
