/* needsled: fill each saved scenario's results (scenario page, side-by-side comparison). */
"use strict";
(function () {
  for (const box of document.querySelectorAll(".scenario-results[data-url]")) {
    const status = box.querySelector(".status");
    window.needsled.fetchJson(box.getAttribute("data-url"))
      .then((result) => window.needsled.render(box, result))
      .then(() => { status.textContent = "Up to date."; box.dataset.ready = "1"; })
      .catch((err) => { status.classList.add("error"); status.textContent = err.message; });
  }
})();
