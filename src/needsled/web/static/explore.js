/* needsled explorer: sliders and number boxes stay in step. While a lever moves, the server's
   quick central estimate is shown (debounced); once it stops, the full result with its 80%
   ranges: the headline, the table by service and the charts. Answers to settings that have
   since changed are dropped. */
"use strict";
(function () {
  const root = document.getElementById("explorer");
  if (!root) return;
  const modelId = root.getAttribute("data-model");
  const form = document.getElementById("lever-form");
  const status = document.getElementById("status");
  const base = document.getElementById("base");
  const defaults = JSON.parse(document.getElementById("defaults").textContent);
  const inputs = Array.from(form.querySelectorAll("input[data-lever]"));
  const DEBOUNCE_MS = 250; // the quick central estimate, while a slider moves
  const SETTLE_MS = 900; // the full result with its ranges, once it has stopped
  let quickTimer = null;
  let fullTimer = null;
  let sequence = 0;
  let fullShown = 0;
  let started = 0;

  function settings() {
    const out = {};
    for (const input of inputs) {
      if (input.type === "number" && input.value !== "") out[input.dataset.lever] = Number(input.value);
    }
    return out;
  }

  function mirror(source) {
    for (const input of inputs) {
      if (input !== source && input.dataset.lever === source.dataset.lever) input.value = source.value;
    }
  }

  async function ask(mode) {
    return window.needsled.fetchJson("/api/models/" + modelId + "/evaluate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: base.value || null, settings: settings(), mode: mode }),
    });
  }

  async function run(mine, mode) {
    try {
      const result = await ask(mode);
      if (mine !== sequence) return; // the levers have moved since: a newer answer is coming
      if (mode === "preview" && fullShown === mine) return;
      await window.needsled.render(root, result);
      if (mode === "full") {
        fullShown = mine;
        status.textContent = "Up to date (" + Math.round(performance.now() - started) + " ms).";
        root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
      } else {
        status.textContent = "Central estimate shown; the 80% ranges follow when you stop moving…";
      }
    } catch (err) {
      if (mine !== sequence) return;
      status.classList.add("error");
      status.textContent = err.message;
    }
  }

  function schedule(now) {
    clearTimeout(quickTimer);
    clearTimeout(fullTimer);
    const mine = ++sequence;
    started = performance.now();
    status.classList.remove("error");
    if (!now) status.textContent = "Working it out…"; // at first: what the server said

    quickTimer = setTimeout(() => run(mine, "preview"), now ? 0 : DEBOUNCE_MS);
    fullTimer = setTimeout(() => run(mine, "full"), now ? 0 : SETTLE_MS);
  }

  for (const input of inputs) {
    input.addEventListener("input", () => { mirror(input); schedule(false); });
    input.addEventListener("change", () => { mirror(input); schedule(false); });
  }
  base.addEventListener("change", () => schedule(false));
  document.getElementById("reset").addEventListener("click", () => {
    for (const input of inputs) if (input.dataset.lever in defaults) input.value = defaults[input.dataset.lever];
    schedule(false);
  });
  schedule(true);
})();
