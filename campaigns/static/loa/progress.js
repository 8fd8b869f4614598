// The campaign page's live panel: refreshes itself while the campaign runs, and for a few minutes
// after, while delivery receipts still arrive. No library (the machine has no CDN).
(function () {
  "use strict";
  var panel = document.getElementById("loa-stats");
  if (!panel) return;
  var url = panel.dataset.url;
  var startStatus = panel.dataset.status;
  if (startStatus === "draft") return;
  var charts = document.getElementById("loa-charts");
  var lang = (document.documentElement.lang || "en").toLowerCase();
  var locale = lang.indexOf("vi") === 0 ? "vi-VN" : "en-US";
  // Reloading to show the new actions must never drop what someone is typing in the form below.
  var dirty = false;
  var form = document.getElementById("campaign_form");
  if (form) form.addEventListener("input", function () { dirty = true; });

  function fmt(value) {
    return Number(value).toLocaleString(locale, {maximumFractionDigits: 0});
  }

  function render(s) {
    panel.querySelectorAll("[data-k]").forEach(function (el) {
      var v = s[el.dataset.k];
      if (v === undefined) return;
      // "money": VND as templates_app.formatting.format_vnd writes it, "99.000 ₫", no decimals
      el.textContent = el.dataset.fmt ? fmt(v) + (el.dataset.fmt === "money" ? "\u00a0₫" : "") : v;
    });
    var bar = panel.querySelector(".loa-progress-bar");
    if (bar) bar.style.width = s.progress + "%";
    var pb = document.getElementById("progress");
    if (pb) pb.setAttribute("aria-valuenow", s.progress);
    var badge = panel.querySelector(".loa-badge");
    if (badge) badge.className = "loa-badge loa-badge-" + s.status;
    if (charts && s.panel) charts.innerHTML = s.panel;
  }

  var active = {running: 1, settling: 1, scheduled: 1, paused: 1};
  var afterwards = 0;
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      })
      .then(function (s) {
        render(s);
        if (s.status !== startStatus && !dirty) {
          // New status, new allowed actions: show them.
          window.location.reload();
          return;
        }
        if (active[s.status]) {
          setTimeout(tick, 2000);
        } else if (afterwards++ < 30) {
          setTimeout(tick, 10000); // receipts keep arriving after the last send
        }
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, active[startStatus] ? 1000 : 5000);
})();
