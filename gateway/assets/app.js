// healgrid dashboard: refreshes the server-rendered panels without a full
// reload, checks the API version, and runs actions behind a confirm dialog
// with a reason. No framework, no build step. The bearer token (only needed
// when the gateway has one) is kept in sessionStorage, never in a cookie.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const panels = document.getElementById("panels");
  const live = document.getElementById("live");

  function toast(text, isError) {
    const box = document.getElementById("toast");
    const d = document.createElement("div");
    d.textContent = text;
    if (isError) d.className = "err";
    box.appendChild(d);
    setTimeout(() => d.remove(), 8000);
  }

  async function refresh() {
    if (!panels) return;
    try {
      const r = await fetch(panels.dataset.refresh, { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      panels.innerHTML = await r.text();
      live.textContent = "updated " + new Date().toLocaleTimeString();
      live.classList.remove("stale");
    } catch (e) {
      live.textContent = "gateway unreachable (" + e.message + ")";
      live.classList.add("stale");
    }
  }

  async function checkVersion() {
    try {
      const r = await fetch("/api/v1/version");
      const v = await r.json();
      if (v.api_version !== document.body.dataset.apiVersion) {
        document.getElementById("version-warning").hidden = false;
      }
    } catch (e) { /* the refresh loop reports an unreachable gateway */ }
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  async function post(path, body, key) {
    const headers = { "Content-Type": "application/json", "Idempotency-Key": key };
    const token = sessionStorage.getItem("healgrid-token");
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  }

  async function act(path, body) {
    const key = newKey();
    let r = await post(path, body, key);
    if (r.status === 401) {
      const t = window.prompt("This gateway needs its bearer token:");
      if (!t) return;
      sessionStorage.setItem("healgrid-token", t);
      r = await post(path, body, key);
    }
    let payload = {};
    try { payload = await r.json(); } catch (e) { /* empty body */ }
    if (r.ok) {
      const said = payload.message
        ? payload.action + ": " + payload.message + (payload.replayed ? " (done earlier; nothing done again)" : "")
        : JSON.stringify(payload);
      toast("done: POST " + path + " → " + said, false);
    } else {
      const msg = payload.error ? payload.error.message : "HTTP " + r.status;
      toast("refused (" + r.status + "): " + msg, true);
    }
    refresh();
  }

  const dialog = document.getElementById("confirm");
  let pending = null;
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    pending = b;
    document.getElementById("confirm-title").textContent = b.dataset.title || "Confirm";
    document.getElementById("confirm-reason").value = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    const b = pending;
    pending = null;
    if (!b || dialog.returnValue !== "ok") return;
    const body = { reason: document.getElementById("confirm-reason").value };
    if (b.dataset.hold) body.hold_seconds = Number(b.dataset.hold);
    act(b.dataset.action, body);
  });

  checkVersion();
  setInterval(refresh, REFRESH_MS);
})();
