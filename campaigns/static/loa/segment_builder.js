// The segment rule builder (campaigns/admin/segments.py): rules picked with selects and typed
// values, groups of rules joined by OR (or AND), written into the rules' JSON (kept in an
// "Advanced" <details>), and a live count with a sample of matching contacts fetched (debounced)
// from the segment admin's preview endpoint. Vanilla JS, no build step, nothing from the network
// but that endpoint. Without JavaScript the JSON view is the form.
(function () {
  "use strict";

  var TAG = "__tag__";
  var OPS = {
    text: ["contains", "eq", "neq", "not_contains", "starts_with", "in", "empty", "not_empty"],
    number: ["gte", "lte", "gt", "lt", "eq", "neq", "in", "empty", "not_empty"],
    date: ["last_days", "next_days", "birthday_days", "anniversary_in", "before", "after", "on", "empty", "not_empty"],
    // A lunar date (stored lunar yyyy-mm-dd): its comparisons need the lunar calendar, which the
    // date-triggered automations apply; a segment can test whether it is filled.
    lunar: ["not_empty", "empty"],
    tag: ["has_tag", "not_has_tag"]
  };
  var NO_VALUE = ["empty", "not_empty"];
  var DAYS = ["last_days", "next_days", "birthday_days", "anniversary_in"];
  var DATES = ["before", "after", "on"];

  var el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  };

  var cookie = function (name) {
    var m = document.cookie.match("(^|;)\\s*" + name + "=([^;]*)");
    return m ? decodeURIComponent(m[2]) : "";
  };

  var setup = function (box) {
    var config = JSON.parse(document.getElementById("segment-builder-config").textContent);
    var T = config.text;
    var textarea = box.querySelector("textarea");
    var rulesBox = box.querySelector(".loa-sb-rules");
    var preview = box.querySelector(".loa-sb-preview");
    var countEl = preview.querySelector("#segment-live-count");
    var sampleEl = preview.querySelector("#segment-live-sample");
    var form = box.closest("form");
    var matchSelect = form && form.querySelector("select[name='match']");
    var types = {};
    config.keys.forEach(function (k) { types[k.key] = k.type; });
    var uid = 0;

    var tagList = el("datalist", { id: "loa-sb-tags" });
    config.tags.forEach(function (t) { tagList.appendChild(el("option", { value: t })); });
    var keyList = el("datalist", { id: "loa-sb-keys" });
    config.keys.forEach(function (k) { keyList.appendChild(el("option", { value: k.key })); });
    box.appendChild(tagList);
    box.appendChild(keyList);

    var typeOf = function (attribute) {
      if (attribute === TAG) return "tag";
      return types[attribute] || "text";
    };

    // ---- one rule row ----------------------------------------------------------------------
    var ruleRow = function (rule, container) {
      uid += 1;
      var row = el("div", { className: "loa-sb-rule", "data-rule": "" });
      var attr = el("select", { className: "loa-sb-attribute", "aria-label": T.attribute });
      attr.appendChild(el("option", { value: "", text: T.choose }));
      attr.appendChild(el("option", { value: TAG, text: T.tag }));
      config.keys.forEach(function (k) {
        attr.appendChild(el("option", { value: k.key, text: k.key }));
      });
      var current = rule.op === "has_tag" || rule.op === "not_has_tag" ? TAG : rule.attribute || "";
      if (current && !attr.querySelector("option[value='" + CSS.escape(current) + "']")) {
        attr.appendChild(el("option", { value: current, text: current }));  // a rarer key
      }
      attr.value = current;
      var op = el("select", { className: "loa-sb-op", "aria-label": T.operator });
      var value = el("input", { type: "text", className: "loa-sb-value", "aria-label": T.value });
      var unit = el("span", { className: "loa-sb-unit" });
      var remove = el("button", {
        type: "button", className: "button loa-sb-remove", title: T.remove, "aria-label": T.remove,
        text: "×"
      });

      var fillOps = function () {
        var wanted = op.value || rule.op;
        op.innerHTML = "";
        OPS[typeOf(attr.value)].forEach(function (o) {
          op.appendChild(el("option", { value: o, text: config.ops[o] || o }));
        });
        if (OPS[typeOf(attr.value)].indexOf(wanted) >= 0) op.value = wanted;
      };
      var fitValue = function () {
        var o = op.value;
        value.hidden = NO_VALUE.indexOf(o) >= 0;
        value.type = DAYS.indexOf(o) >= 0 ? "number" : "text";
        value.min = DAYS.indexOf(o) >= 0 ? "0" : "";
        value.placeholder = DATES.indexOf(o) >= 0 ? T.date : o === "in" ? T.list : "";
        unit.textContent = DAYS.indexOf(o) >= 0 ? T.days : "";
        if (typeOf(attr.value) === "tag") value.setAttribute("list", "loa-sb-tags");
        else value.removeAttribute("list");
      };
      fillOps();
      var v = rule.value;
      value.value = Array.isArray(v) ? v.join(", ") : v === undefined || v === null ? "" : v;
      fitValue();

      attr.addEventListener("change", function () { fillOps(); fitValue(); changed(); });
      op.addEventListener("change", function () { fitValue(); changed(); });
      value.addEventListener("input", changed);
      remove.addEventListener("click", function () {
        var parent = row.parentNode;
        row.remove();
        if (parent.closest(".loa-sb-group") && !parent.querySelector("[data-rule]")) {
          parent.closest(".loa-sb-group").remove();
        }
        changed();
      });
      row.appendChild(attr);
      row.appendChild(op);
      row.appendChild(value);
      row.appendChild(unit);
      row.appendChild(remove);
      row.read = function (complete) {
        var a = attr.value, o = op.value, val = value.value.trim();
        if (!a) return null;
        if (NO_VALUE.indexOf(o) < 0 && val === "" && complete) return null;
        var out = a === TAG ? { op: o } : { attribute: a, op: o };
        if (NO_VALUE.indexOf(o) < 0) {
          out.value = o === "in"
            ? val.split(",").map(function (s) { return s.trim(); }).filter(Boolean)
            : DAYS.indexOf(o) >= 0 && val !== "" && !isNaN(Number(val)) ? Number(val) : val;
        }
        return out;
      };
      container.appendChild(row);
      return row;
    };

    // ---- a group -----------------------------------------------------------------------------
    var group = function (item) {
      var g = el("fieldset", { className: "loa-sb-group", "data-group": "" });
      var match = el("select", { className: "loa-sb-group-match", "aria-label": T.group });
      match.appendChild(el("option", { value: "any", text: T.group }));
      match.appendChild(el("option", { value: "all", text: T.groupAll }));
      match.value = item.match === "all" ? "all" : "any";
      var legend = el("legend", {}, [match]);
      var inner = el("div", { className: "loa-sb-group-rules" });
      var add = el("button", { type: "button", className: "button loa-sb-add-in-group", text: T.addInGroup });
      var drop = el("button", { type: "button", className: "button loa-sb-remove-group", text: T.removeGroup });
      match.addEventListener("change", changed);
      add.addEventListener("click", function () {
        var r = ruleRow({}, inner);
        r.querySelector("select").focus();
        changed();
      });
      drop.addEventListener("click", function () { g.remove(); changed(); });
      (item.rules && item.rules.length ? item.rules : [{}]).forEach(function (r) {
        ruleRow(r, inner);
      });
      g.appendChild(legend);
      g.appendChild(inner);
      g.appendChild(el("p", {}, [add, document.createTextNode(" "), drop]));
      g.read = function (complete) {
        var rules = [];
        inner.querySelectorAll("[data-rule]").forEach(function (r) {
          var x = r.read(complete);
          if (x) rules.push(x);
        });
        return rules.length ? { match: match.value, rules: rules } : null;
      };
      rulesBox.appendChild(g);
      return g;
    };

    // ---- reading, writing, counting --------------------------------------------------------
    var read = function (complete) {
      var out = [];
      Array.prototype.forEach.call(rulesBox.children, function (node) {
        var x = node.read ? node.read(complete) : null;
        if (x) out.push(x);
      });
      return out;
    };
    var listIds = function () {
      var to = form && form.querySelector("select[name='contact_lists']");
      if (!to) return [];
      var chosen = /_to$/.test(to.id) ? to.options : to.selectedOptions;
      return Array.prototype.map.call(chosen, function (o) { return o.value; });
    };
    var timer = null, seq = 0;
    var count = function () {
      var mine = ++seq;
      preview.hidden = false;
      countEl.textContent = "…";
      fetch(config.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": cookie("csrftoken") ||
          (form.querySelector("[name=csrfmiddlewaretoken]") || {}).value },
        body: JSON.stringify({
          rules: read(true), match: matchSelect ? matchSelect.value : "all", lists: listIds()
        })
      }).then(function (r) { return r.json(); }).then(function (data) {
        if (mine !== seq) return;  // an older answer arriving late
        sampleEl.innerHTML = "";
        if (data.errors) { countEl.textContent = data.errors.join(" "); return; }
        countEl.textContent = data.count_text;
        if (data.count === 0) sampleEl.appendChild(el("li", { text: T.none }));
        (data.sample || []).forEach(function (c) {
          sampleEl.appendChild(el("li", { text: (c.name ? c.name + " · " : "") + c.phone }));
        });
      }).catch(function () { if (mine === seq) countEl.textContent = T.error; });
    };
    var changed = function () {
      textarea.value = JSON.stringify(read(false), null, 2);
      clearTimeout(timer);
      timer = setTimeout(count, 400);
    };

    // ---- start from what the JSON holds ------------------------------------------------------
    var initial;
    try { initial = JSON.parse(textarea.value || "[]"); } catch (e) { initial = null; }
    if (!Array.isArray(initial)) {
      box.querySelector("details").open = true;  // not something the builder can show
      return;
    }
    initial.forEach(function (item) {
      if (item && Array.isArray(item.rules)) group(item);
      else if (item && typeof item === "object") ruleRow(item, rulesBox);
    });
    if (!initial.length) ruleRow({}, rulesBox);
    box.querySelector(".loa-sb-actions").hidden = false;
    box.querySelector(".loa-sb-add").addEventListener("click", function () {
      ruleRow({}, rulesBox).querySelector("select").focus();
      changed();
    });
    box.querySelector(".loa-sb-add-group").addEventListener("click", function () {
      group({ match: "any", rules: [{}] }).querySelector("select.loa-sb-attribute").focus();
      changed();
    });
    if (matchSelect) matchSelect.addEventListener("change", changed);
    // Lists chosen or removed (the two-box widget moves options; no change event on the box).
    if (form) form.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest(".selector")) {
        clearTimeout(timer);
        timer = setTimeout(count, 400);
      }
    });
    // Edits in the JSON view take over: the builder is rebuilt from them.
    textarea.addEventListener("change", function () {
      var parsed;
      try { parsed = JSON.parse(textarea.value || "[]"); } catch (e) { return; }
      if (!Array.isArray(parsed)) return;
      rulesBox.innerHTML = "";
      parsed.forEach(function (item) {
        if (item && Array.isArray(item.rules)) group(item);
        else if (item && typeof item === "object") ruleRow(item, rulesBox);
      });
      clearTimeout(timer);
      timer = setTimeout(count, 400);
    });
    textarea.value = JSON.stringify(read(false), null, 2);
    count();
  };

  var start = function () {
    document.querySelectorAll(".loa-segment-builder").forEach(setup);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
