// Draw each report chart with the vendored uPlot from the JSON spec beside it; the table
// beneath each chart carries the same figures for everyone (and for screen readers).
(function () {
  "use strict";
  var COLOURS = ["#1f5fa8", "#c0392b", "#2e7d32", "#8e44ad", "#d35400", "#00838f"];

  function draw(el) {
    var spec = JSON.parse(document.getElementById("spec-" + el.dataset.chart).textContent);
    var categories = spec.kind === "bars";
    var bars = categories && spec.series.length === 1;  // several series: points on lines
    var labels = spec.labels || [];
    var x = categories ? labels.map(function (_, i) { return i; }) : spec.x;
    var data = [x].concat(spec.series.map(function (s) { return s.values; }));
    var width = Math.max(280, Math.min(el.clientWidth || 600, 900));
    var series = [{}].concat(spec.series.map(function (s, i) {
      var out = { label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2 };
      if (bars) {
        out.fill = COLOURS[i % COLOURS.length];
        out.paths = uPlot.paths.bars({ size: [0.6, 80] });
        out.points = { show: false };
      } else if (categories) {
        out.points = { show: true, size: 8 };
      }
      return out;
    }));
    var opts = {
      width: width,
      height: 240,
      scales: { x: categories ? { time: false, range: [-0.6, Math.max(labels.length - 0.4, 0.4)] } : { time: !!spec.time } },
      axes: [
        categories ? { values: function (_, ticks) { return ticks.map(function (t) { return labels[t] === undefined ? "" : labels[t]; }); }, splits: function () { return x; } } : {},
        {}
      ],
      series: series
    };
    new uPlot(opts, data, el);
  }

  function drawAll() {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      try { draw(el); } catch (e) { el.textContent = "The chart could not be drawn; the table below has the figures."; }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
}());
