// Name/value rows (campaigns/admin/kv_rows.py): add and remove rows, and keep the "Advanced:
// edit as JSON" view in step with the rows. The page works without it (blank rows, the JSON in
// a <details>); the server decides which one wins (an edited JSON view replaces the rows).
(function () {
  "use strict";
  var setup = function (box) {
    var tbody = box.querySelector("tbody");
    var add = box.querySelector(".loa-kv-add");
    var details = box.querySelector("details");
    var text = box.querySelector("textarea");
    var initial = box.querySelector("input[name$='-json-initial']");
    var counter = tbody.rows.length;

    var rowsToObject = function () {
      var out = {};
      tbody.querySelectorAll("tr").forEach(function (tr) {
        var key = tr.querySelector("input[name$='-key']").value.trim();
        var value = tr.querySelector("input[name$='-value']").value;
        var kind = tr.querySelector("input[name$='-type']").value;
        if (!key) return;
        if (kind === "json") {
          try { out[key] = JSON.parse(value); return; } catch (e) { /* kept as text */ }
        }
        out[key] = value.trim();
      });
      return out;
    };
    var wire = function (tr) {
      var remove = tr.querySelector(".loa-kv-remove");
      remove.hidden = false;
      remove.addEventListener("click", function () {
        var next = tr.nextElementSibling || tr.previousElementSibling;
        tr.remove();
        if (!tbody.rows.length) addRow();
        var focus = (next && next.querySelector("input")) || add;
        if (focus) focus.focus();
      });
    };
    var addRow = function () {
      var template = tbody.querySelector("tr");
      var tr = template.cloneNode(true);
      tr.querySelectorAll("input").forEach(function (input) {
        if (input.type === "hidden") { input.value = "text"; } else { input.value = ""; }
        input.removeAttribute("title");
        if (input.id) input.id = input.id.replace(/-\d+$/, "-" + counter);
      });
      counter += 1;
      tbody.appendChild(tr);
      wire(tr);
      return tr;
    };
    tbody.querySelectorAll("tr").forEach(wire);
    add.hidden = false;
    add.addEventListener("click", function () {
      addRow().querySelector("input").focus();
    });
    // Opening the JSON view shows the rows as they are now; it counts as edited only if the
    // person then changes it (both the text and its "initial" copy are refreshed).
    details.addEventListener("toggle", function () {
      if (!details.open) return;
      var json = JSON.stringify(rowsToObject(), null, 2);
      text.value = json;
      initial.value = json;
    });
  };
  var start = function () {
    document.querySelectorAll(".loa-kv").forEach(setup);
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
