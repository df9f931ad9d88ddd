/* needsled: draw the optimiser's marginal-money curve. */
"use strict";
(function () {
  const data = document.getElementById("curve-spec");
  const target = document.getElementById("curve-chart");
  if (!data || !target || typeof window.vegaEmbed !== "function") return;
  window.vegaEmbed(target, JSON.parse(data.textContent), window.needsled.EMBED)
    .then(() => { target.dataset.ready = "1"; });
})();
