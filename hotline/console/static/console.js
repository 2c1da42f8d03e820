// The console's only script: live figures by short polling of the JSON API, and copy
// buttons. Pages work without it (reload to update). It never creates an image.
"use strict";
(function () {
  const POLL_MS = 2000;
  const ENDED = new Set(["finished", "failed", "cancelled"]);

  function get(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  function cell(row, text, href) {
    const td = document.createElement("td");
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
  }

  function errors(stats) {
    return Object.values(stats.errors || {}).reduce((a, b) => a + b, 0);
  }

  function renderRuns(tbody, runs, root) {
    tbody.replaceChildren();
    if (!runs.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 8;
      td.textContent = "no crawl is running";
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    for (const r of runs) {
      const tr = document.createElement("tr");
      cell(tr, r.id, root + "/runs/" + encodeURIComponent(r.id));
      for (const v of [r.status, r.origin, r.stats.pages, r.stats.images, r.stats.confirmed, r.stats.review, errors(r.stats)]) {
        cell(tr, String(v));
      }
      tbody.appendChild(tr);
    }
  }

  function poll(box) {
    const root = document.body.dataset.root || "";
    let lastStatus = null;
    async function tick() {
      let data;
      try {
        const response = await fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) return;
        data = await response.json();
      } catch (e) {
        return;
      }
      for (const el of box.querySelectorAll("[data-live]")) {
        let value = get(data, el.dataset.live);
        if (Array.isArray(value)) value = value.join(", ") || "ok";
        el.textContent = value == null ? "-" : String(value);
      }
      for (const el of box.querySelectorAll("[data-live-rows]")) {
        renderRuns(el, get(data, el.dataset.liveRows) || [], root);
      }
      if (box.dataset.poll === "run") {
        // When the run ends, reload once so its hits are listed.
        if (lastStatus && !ENDED.has(lastStatus) && ENDED.has(data.status)) {
          window.location.reload();
          return;
        }
        lastStatus = data.status;
        if (ENDED.has(data.status)) return;
      }
      window.setTimeout(tick, POLL_MS);
    }
    const initial = box.querySelector('[data-live="status"]');
    lastStatus = initial ? initial.textContent.trim() : null;
    if (box.dataset.poll === "run" && ENDED.has(lastStatus)) return;
    window.setTimeout(tick, POLL_MS);
  }

  function copyButtons() {
    for (const button of document.querySelectorAll("button.copy")) {
      button.addEventListener("click", async () => {
        const source = document.getElementById(button.dataset.copy);
        if (!source) return;
        source.select();
        try {
          await navigator.clipboard.writeText(source.value);
          button.textContent = "Copied";
        } catch (e) {
          document.execCommand("copy");
          button.textContent = "Copied (selected)";
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const box of document.querySelectorAll("[data-poll]")) poll(box);
    copyButtons();
  });
})();
