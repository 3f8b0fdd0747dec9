// Rungs console: instants in the viewer's time zone, the queue's keys, the CSRF header for htmx.
(function () {
  "use strict";
  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  function localTimes(root) {
    (root || document).querySelectorAll("time[data-local]:not([data-done])").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.textContent = fmt.format(d); t.setAttribute("data-done", ""); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSwap", function (e) { localTimes(e.target); });
  document.addEventListener("htmx:configRequest", function (e) {
    var m = document.querySelector('meta[name="csrf-token"]');
    if (m) { e.detail.headers["X-CSRF-Token"] = m.content; }
  });
  // Live updates connected (tests wait for it; a stylesheet could show it).
  document.addEventListener("htmx:sseOpen", function () { document.body.setAttribute("data-live", "1"); });
  document.addEventListener("htmx:sseError", function () { document.body.setAttribute("data-live", "0"); });
  // The queue: j/k move, a acknowledges the current row, / focuses the search.
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.cases tbody tr[data-case]")); }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var list = rows();
    if (e.key === "/") {
      var q = document.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); }
      return;
    }
    if (!list.length || ["j", "k", "a"].indexOf(e.key) < 0) { return; }
    var cur = list.findIndex(function (r) { return r.classList.contains("current"); });
    if (e.key === "a") {
      if (cur < 0) { return; }
      var form = document.getElementById("ack-" + list[cur].getAttribute("data-case"));
      if (form) { e.preventDefault(); form.requestSubmit(); }
      return;
    }
    var next = e.key === "j" ? Math.min(cur + 1, list.length - 1) : Math.max(cur - 1, 0);
    if (cur >= 0) { list[cur].classList.remove("current"); }
    list[next].classList.add("current");
    list[next].focus();
    e.preventDefault();
  });
})();
