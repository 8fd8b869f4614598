// The campaign wizard's small helpers: the live audience count (step 3) and the value
// suggestions that follow each parameter's source (step 4). The pages work without it.
(function () {
  "use strict";
  var audience = document.getElementById("wizard-audience");
  if (audience) {
    var out = document.getElementById("audience-count");
    var url = audience.dataset.countUrl;
    var timer = null;
    var refresh = function () {
      var params = new URLSearchParams();
      audience.querySelectorAll("input[type=checkbox]:checked").forEach(function (cb) {
        params.append(cb.name, cb.value);
      });
      fetch(url + "?" + params.toString(), {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (d) { out.textContent = d.text; })
        .catch(function () {});
    };
    audience.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
  }
  var mapping = document.getElementById("wizard-mapping");
  if (mapping) {
    var lists = {field: "loa-fields", attribute: "loa-attrs", column: "loa-attrs"};
    mapping.querySelectorAll("tbody tr").forEach(function (row) {
      var source = row.querySelector("select");
      var value = row.querySelector("input[data-role=value]");
      if (!source || !value) return;
      var sync = function () {
        var list = lists[source.value];
        if (list) value.setAttribute("list", list); else value.removeAttribute("list");
        if (source.value === "field" && ["name", "phone"].indexOf(value.value) < 0) value.value = "name";
      };
      source.addEventListener("change", sync);
    });
  }
})();
