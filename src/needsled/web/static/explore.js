/* needsled explorer: sliders and number boxes stay in step. While a lever moves, the page
   asks for the server's quick central estimate, one request at a time (the latest settings
   go as soon as the previous answer is in), and shows each as it comes; once the levers have
   been still for SETTLE_MS, it asks for the full result with its 80% ranges: the headline,
   the table by service and the charts. A request whose settings have since changed is
   aborted, and the server drops one still waiting (it answers 409); no answer older than
   what is shown replaces it. */
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
  const SETTLE_MS = 900; // the full result with its ranges, once the levers are still
  let sequence = 0; // settings changes so far
  let shown = 0; // the settings (by sequence) of what the page shows
  let fullShown = -1; // ... and of the last full result shown
  let started = 0;
  let fullTimer = null;
  let previewBusy = false;
  let previewAgain = false;
  let fullRequest = null; // AbortController of the full request in flight
  let lastKey = null; // the settings last asked for

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

  function ask(mode, signal) {
    return window.needsled.fetchJson("/api/models/" + modelId + "/evaluate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: base.value || null, settings: settings(), mode: mode }),
      signal: signal,
    });
  }

  function quiet(err) {
    // superseded on the server, or aborted here: a newer request is on its way
    return err.status === 409 || err.name === "AbortError";
  }

  function failed(mine, err) {
    if (quiet(err) || mine !== sequence) return;
    status.classList.add("error");
    status.textContent = err.message;
  }

  async function preview() {
    if (previewBusy) { previewAgain = true; return; }
    previewBusy = true;
    previewAgain = false;
    const mine = sequence;
    try {
      const result = await ask("preview");
      if (mine > shown) { // newer than what is shown (never over a full result)
        shown = mine;
        await window.needsled.render(root, result);
        if (mine === sequence) {
          status.textContent = "Central estimate shown; the 80% ranges follow when you stop moving…";
        }
      }
    } catch (err) {
      failed(mine, err);
    } finally {
      previewBusy = false;
      if (previewAgain && fullShown !== sequence) preview();
    }
  }

  async function full() {
    if (fullRequest) fullRequest.abort(); // for settings that have since changed
    const mine = sequence;
    const controller = new AbortController();
    fullRequest = controller;
    try {
      const result = await ask("full", controller.signal);
      if (mine !== sequence) return; // the levers have moved since
      shown = fullShown = mine;
      await window.needsled.render(root, result);
      status.textContent = "Up to date (" + Math.round(performance.now() - started) + " ms).";
      root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
    } catch (err) {
      failed(mine, err);
    } finally {
      if (fullRequest === controller) fullRequest = null;
    }
  }

  function changed(now) {
    const key = JSON.stringify([base.value, settings()]);
    if (key === lastKey) return; // "change" after "input", or a value typed again
    lastKey = key;
    sequence += 1;
    started = performance.now();
    status.classList.remove("error");
    if (!now) status.textContent = "Working it out…"; // at first: what the server said
    if (fullRequest) { fullRequest.abort(); fullRequest = null; }
    clearTimeout(fullTimer);
    preview();
    fullTimer = setTimeout(full, now ? 0 : SETTLE_MS);
  }

  for (const input of inputs) {
    input.addEventListener("input", () => { mirror(input); changed(false); });
    input.addEventListener("change", () => { mirror(input); changed(false); });
  }
  base.addEventListener("change", () => changed(false));
  document.getElementById("reset").addEventListener("click", () => {
    for (const input of inputs) if (input.dataset.lever in defaults) input.value = defaults[input.dataset.lever];
    changed(false);
  });
  changed(true);
})();
