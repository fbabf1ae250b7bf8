// The requester's rating page: no account, the one-time token is in the address's fragment
// (never sent to a server except in the API call itself).
"use strict";

const TOKEN = location.hash.slice(1);

function show(...children) {
  document.getElementById("job").replaceChildren(...children);
}

async function call(method, body) {
  const answer = await fetch(`/api/rate/${encodeURIComponent(TOKEN)}`, {
    method, headers: body ? {"Content-Type": "application/json"} : {},
    body: body ? JSON.stringify(body) : undefined, credentials: "omit", referrerPolicy: "no-referrer"});
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    throw new Error(typeof data.detail === "string" ? data.detail : "this rating link does not work: ask for a new one");
  }
  return data;
}

async function start() {
  if (!/^[A-Za-z0-9_-]{20,64}$/.test(TOKEN)) {
    show(el("p", {}, "This link is incomplete: open the whole link you were given."));
    return;
  }
  let job;
  try { job = await call("GET"); } catch (error) { show(el("p", {}, error.message)); return; }
  show(el("div", {class: "title"}, job.title),
       el("div", {class: "meta"}, job.technician ? `with ${job.technician}` : ""));
  if (job.rated) { show(el("p", {}, "This job has been rated already. Thank you!")); return; }
  const form = document.getElementById("rating");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const stars = form.querySelector("input[name=stars]:checked");
    if (!stars) { document.getElementById("error").textContent = "Pick one to five stars first."; return; }
    try {
      await call("POST", {stars: Number(stars.value), comment: form.comment.value.trim()});
      form.hidden = true;
      document.getElementById("error").textContent = "";
      show(el("div", {class: "title"}, job.title), el("p", {id: "thanks"}, `Thank you: ${"★".repeat(Number(stars.value))} sent.`));
    } catch (error) { document.getElementById("error").textContent = error.message; }
  });
}

start();
