// Draws the charts (uPlot) and keeps focus and open tables across live updates (htmx).
// No inline scripts: the Content-Security-Policy allows only files of this package.
(function () {
  "use strict";
  var charts = (window.mlopsCharts = {});
  var palette = ["#0b57d0", "#b3261e", "#1a6e2e", "#7b3fa8", "#8a4b00", "#00676f", "#44505c", "#ad1457"];

  function draw(root) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var id = el.getAttribute("data-chart");
      var data = JSON.parse(el.getAttribute("data-series"));
      if (charts[id]) charts[id].chart.destroy();
      el.textContent = "";
      var lines = data.series.length - data.thresholds;
      var series = [{ label: "time" }];
      data.series.forEach(function (label, i) {
        var threshold = i >= lines;
        series.push({
          label: label,
          stroke: threshold ? "#44505c" : palette[i % palette.length],
          width: threshold ? 1 : 2,
          dash: threshold ? [6, 4] : undefined,
          points: { show: !threshold },
          spanGaps: true,
          paths: data.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
        });
      });
      var chart = new uPlot(
        {
          width: Math.max(320, Math.min(960, el.clientWidth || 960)),
          height: 260,
          series: series,
          axes: [{}, data.integer ? { label: data.yLabel, incrs: [1, 2, 5, 10, 20, 50] } : { label: data.yLabel }],
          scales: { x: { time: true } },
        },
        data.columns,
        el
      );
      var points = 0;
      data.columns.slice(1, 1 + lines).forEach(function (column) {
        column.forEach(function (v) { if (v !== null) points += 1; });
      });
      charts[id] = { chart: chart, points: points };
    });
  }

  var kept = { focus: null, open: [] };
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    kept.focus = active && active !== document.body ? active.id || active.getAttribute("href") : null;
    kept.open = Array.prototype.map.call(document.querySelectorAll("details[open][id]"), function (d) { return d.id; });
  });
  // htmx:load fires on the new content once it is in the document (an outerHTML swap's
  // afterSettle fires on the element it replaced, which no longer bubbles to the document).
  document.addEventListener("htmx:load", function (event) {
    if (event.target === document.body) return; // the first load: DOMContentLoaded draws
    kept.open.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) details.open = true;
    });
    if (kept.focus) {
      var target = document.getElementById(kept.focus) ||
        document.querySelector('main [href="' + CSS.escape(kept.focus) + '"]');
      if (target) target.focus({ preventScroll: true });
    }
    draw(document);
  });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
})();
