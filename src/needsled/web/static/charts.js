/* needsled: draw an evaluation result (headline, summary table, Vega-Lite charts) into a
   container. Our own code; Vega/Vega-Lite/Vega-Embed come from /vendor (vl-convert). */
"use strict";
(function () {
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function lines(headline) {
    if (headline === undefined || headline === null) return [];
    if (Array.isArray(headline)) return headline.map(String);
    if (typeof headline === "object") return Object.values(headline).map(String);
    return String(headline).split(/\n+/).filter(Boolean);
  }

  function tableRows(result) {
    for (const key of ["summary", "rows", "table", "summary_rows"]) {
      const v = result[key];
      if (Array.isArray(v)) return { rows: v, columns: null };
      if (v && Array.isArray(v.rows)) return { rows: v.rows, columns: v.columns || null };
    }
    return { rows: [], columns: null };
  }

  function fmt(v) {
    if (typeof v === "number") {
      return Math.abs(v) >= 100 ? v.toLocaleString("en-GB", { maximumFractionDigits: 0 })
                                : v.toLocaleString("en-GB", { maximumFractionDigits: 2 });
    }
    return v === null || v === undefined ? "" : String(v);
  }

  // plain-word headings for the explorer's summary figures (others shown by their key)
  const HEADINGS = {
    referrals: "Referrals in the year", waiting: "Waiting at the year's end",
    mean_wait_weeks: "Mean wait (weeks)", within_target_share: "Seen within the target wait",
    fte: "Staff (FTE)", fte_needed: "FTE needed", fte_shortfall: "FTE short",
    cost_shortfall: "Cost of the shortfall (£ a year)",
  };
  const SKIP = new Set(["service", "stretch"]);

  function figure(key, v) {
    // a figure {mean, p10, p90, deterministic, base}: the mean, then its 80% range
    if (v === null || v === undefined) return "";
    if (typeof v !== "object") return fmt(v);
    const share = key.endsWith("_share");
    const f = (x) => (x === null || x === undefined) ? "" : share ? Math.round(100 * x) + "%" : fmt(x);
    let text = f(v.mean);
    if (v.p10 !== undefined && v.p90 !== undefined && v.p10 !== v.p90) text += " (" + f(v.p10) + "–" + f(v.p90) + ")";
    return text;
  }

  function drawTable(holder, result) {
    holder.replaceChildren();
    const { rows, columns } = tableRows(result);
    if (!rows.length) return;
    const cols = (columns || Object.keys(rows[0])).filter((c) => !SKIP.has(c));
    const table = el("table", { class: "numbers summary-table" });
    if (result.year) table.append(el("caption", {}, "Each service in " + result.year + ": the average over the simulations, and in brackets the range 8 in 10 fall within"));
    const head = el("thead"); const tr = el("tr");
    for (const c of cols) tr.append(el("th", { scope: "col" }, c === "service_name" ? "Service" : (HEADINGS[c] || String(c).replace(/_/g, " "))));
    head.append(tr); table.append(head);
    const body = el("tbody");
    for (const r of rows) {
      const row = el("tr");
      cols.forEach((c, i) => {
        const v = Array.isArray(r) ? r[i] : r[c];
        row.append(el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : { "data-metric": c }, figure(c, v)));
      });
      body.append(row);
    }
    table.append(body); holder.append(table);
  }

  function isWrapper(item) {
    // {key, title, spec} around a chart; a Vega-Lite facet or repeat has "spec" of its own
    return item && item.spec && !item.$schema && !item.facet && !item.repeat && !item.data && !item.datasets;
  }

  function chartList(result) {
    const c = result.charts || result.specs || [];
    const out = [];
    const push = (key, item) => {
      if (!item) return;
      if (isWrapper(item)) out.push({ key: item.key || item.name || key, title: item.title || "", spec: item.spec });
      else out.push({ key, title: chartTitle(item), spec: item });
    };
    if (Array.isArray(c)) c.forEach((item, i) => push("chart-" + i, item));
    else Object.entries(c).forEach(([k, v]) => push(k, v));
    return out;
  }

  function chartTitle(spec) {
    const t = spec.title;
    if (!t) return "";
    if (typeof t === "string") return t;
    return [t.text, t.subtitle].flat().filter(Boolean).join(". ");
  }

  // Vega's expression interpreter (ast), so the page needs no eval; no style elements of
  // Vega-Embed's or the tooltip's (the strict CSP refuses them: app.css styles both)
  const EMBED = { actions: false, renderer: "svg", ast: true, defaultStyle: false,
                  tooltip: { disableDefaultStyle: true } };

  const views = new WeakMap();

  async function drawCharts(holder, result) {
    const charts = chartList(result);
    const old = views.get(holder) || [];
    old.forEach((v) => { try { v.finalize(); } catch (e) { /* already gone */ } });
    holder.replaceChildren();
    const made = [];
    for (const c of charts) {
      const box = el("figure", { class: "chart", "data-chart": c.key });
      const target = el("div", { role: "img", "aria-label": c.title || c.key });
      box.append(target);
      holder.append(box);
      if (typeof window.vegaEmbed === "function") {
        const res = await window.vegaEmbed(target, c.spec, EMBED);
        made.push(res);
      }
    }
    views.set(holder, made);
  }

  async function render(container, result) {
    const headline = container.querySelector(".headline, #headline");
    const summary = container.querySelector(".summary, #summary");
    const charts = container.querySelector(".charts, #charts");
    if (headline) headline.replaceChildren(...lines(result.headline).map((t) => el("p", {}, t)));
    if (summary) drawTable(summary, result);
    if (charts) await drawCharts(charts, result);
  }

  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  async function fetchJson(url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ "Accept": "application/json" }, opts.headers);
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = csrf();
    const response = await fetch(url, opts);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      let msg = (body && body.detail) ? body.detail : ("The server answered " + response.status);
      if (body && Array.isArray(body.problems) && body.problems.length) {
        msg += " " + body.problems.map((p) => [p.column, p.message, p.fix ? "(" + p.fix + ")" : ""].filter(Boolean).join(" ")).join("; ");
      }
      const err = new Error(msg);
      err.status = response.status;
      throw err;
    }
    return body;
  }

  window.needsled = { render, fetchJson, el, EMBED };
})();
