// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // j / k move through list rows, o opens the selected one, / focuses the first search box.
  var index = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-list] tbody tr")); }
  document.addEventListener("keydown", function (e) {
    if (e.target.closest("input, textarea, select")) return;
    var all = rows();
    if (e.key === "j" || e.key === "k") {
      if (!all.length) return;
      if (index >= 0 && all[index]) all[index].classList.remove("selected");
      index = Math.max(0, Math.min(all.length - 1, index + (e.key === "j" ? 1 : -1)));
      all[index].classList.add("selected");
      all[index].scrollIntoView({ block: "nearest" });
    } else if (e.key === "o" && all[index]) {
      var link = all[index].querySelector("a");
      if (link) link.click();
    } else if (e.key === "/") {
      var box = document.querySelector("input[type=search]");
      if (box) { e.preventDefault(); box.focus(); }
    }
  });
  // "browser time" rewrites every <time datetime> into the viewer's own zone.
  document.addEventListener("click", function (e) {
    if (!e.target.matches("[data-browser-time]")) return;
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = d.toLocaleString();
    });
  });
  // The run-duration chart with the p50..p95 band as flat lines.
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("duration-chart");
    var src = document.getElementById("duration-data");
    if (!el || !src || typeof uPlot === "undefined") return;
    var d = JSON.parse(src.textContent);
    if (!d.x.length) { el.textContent = "No finished runs yet."; return; }
    var series = [{}, { label: "duration ms", stroke: "#1f5fbf", width: 2 }];
    var data = [d.x, d.y];
    if (d.band.length >= 2) {
      [["p50", 0], ["p95", 1]].forEach(function (b) {
        series.push({ label: b[0], stroke: "#a3a8ae", dash: [4, 4] });
        data.push(d.x.map(function () { return d.band[b[1]]; }));
      });
    }
    new uPlot({ width: Math.min(el.clientWidth || 600, 900), height: 220, series: series }, data, el);
  });
  // Tiles (parts loading themselves with htmx): show a part's own error state, whatever
  // its status, else a generic one; "Retry" asks the tile to load again.
  function tileOf(e) { var el = e.detail && e.detail.elt; return el && el.closest ? el.closest("[data-tile]") : null; }
  function tileError(e) { var x = e.detail && e.detail.xhr; return x && x.status && x.getResponseHeader("X-Tile-Error"); }
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (tileOf(e) && tileError(e)) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
  function failed(e) {
    var tile = tileOf(e);
    if (!tile || tileError(e)) return;
    tile.innerHTML = '<p class="error" role="alert">Could not load this part.</p><button type="button" data-retry>Retry</button>';
  }
  ["htmx:responseError", "htmx:sendError", "htmx:timeout"].forEach(function (n) { document.addEventListener(n, failed); });
  document.addEventListener("htmx:beforeRequest", function (e) { var t = tileOf(e); if (t) t.setAttribute("aria-busy", "true"); });
  document.addEventListener("htmx:afterRequest", function (e) { var t = tileOf(e); if (t) t.setAttribute("aria-busy", "false"); });
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-retry]");
    var tile = button && button.closest("[data-tile]");
    if (!tile || !window.htmx) return;
    tile.innerHTML = '<p class="muted loading">Loading…</p>';
    htmx.trigger(tile, "retry");
  });
  // The traffic chart: page views, visitors, sessions; incidents and anomalies as markers.
  var COLORS = { incident: "#c62828", anomaly: "#a15c00" };
  function markers(marks) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, bottom = top + u.bbox.height;
      ctx.save();
      ctx.lineWidth = 2;
      marks.forEach(function (m) {
        var x = Math.round(u.valToPos(m.at, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.strokeStyle = COLORS[m.kind] || "#888";
        ctx.setLineDash(m.kind === "incident" ? [] : [4, 4]);
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      });
      ctx.restore();
    };
  }
  document.addEventListener("htmx:afterSettle", function (e) {
    if (typeof uPlot === "undefined" || !e.target.querySelectorAll) return;
    e.target.querySelectorAll("[data-chart]").forEach(function (el) {
      var d = JSON.parse(el.nextElementSibling.textContent);
      if (!d.x.length) { el.textContent = "No data in this range."; return; }
      new uPlot({
        width: Math.min(el.clientWidth || 800, 1100), height: 260,
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), d.tz); },
        series: [{}, { label: "Page views", stroke: "#1f5fbf", width: 2 },
          { label: "Visitors", stroke: "#1b7f4c", width: 2 }, { label: "Sessions", stroke: "#7b4fbf", width: 2 }],
        hooks: { draw: [markers(d.marks)] }
      }, [d.x, d.pageviews, d.visitors, d.sessions], el);
    });
  });
})();
