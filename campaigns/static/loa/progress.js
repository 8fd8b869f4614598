// Refreshes the campaign's progress panel while it runs (no library: the machine has no CDN).
(function () {
  var panel = document.getElementById("loa-stats");
  if (!panel) return;
  var url = panel.dataset.url;
  function render(s) {
    panel.querySelectorAll("[data-k]").forEach(function (el) {
      var v = s[el.dataset.k];
      if (v !== undefined) el.textContent = v;
    });
    var bar = panel.querySelector(".loa-progress-bar");
    bar.style.width = s.progress + "%";
    panel.querySelector(".loa-progress").setAttribute("aria-valuenow", s.progress);
    var pct = s.pct || {};
    ["sent", "delivered", "read", "failed"].forEach(function (k) {
      var b = panel.querySelector(".bar." + k[0]);
      if (b) b.style.width = (pct[k] || 0) + "%";
    });
    var q = panel.querySelector(".bar.q");
    if (q && s.total) q.style.width = (100 * s.queued / s.total) + "%";
    return s.running || s.unknown > 0 || s.sent > s.delivered;
  }
  var polls = 0;
  function tick() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      polls += 1;
      // Keep polling while sending, and for a few minutes after, while receipts still arrive.
      if (render(s) && polls < 600) setTimeout(tick, 2000);
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1000);
})();
