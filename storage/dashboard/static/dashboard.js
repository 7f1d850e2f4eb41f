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
})();
