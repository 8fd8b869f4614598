// The provider account form (providers/admin.py): on "Add", every provider's named settings are
// on the page; only the chosen provider's are shown. Without it, all are shown and the server
// reads only the chosen provider's.
(function () {
  "use strict";
  var start = function () {
    var kind = document.getElementById("id_kind");
    var sets = document.querySelectorAll("fieldset.loa-settings");
    if (!kind || sets.length < 2) return;
    var show = function () {
      sets.forEach(function (set) {
        set.hidden = !set.classList.contains("loa-settings-" + kind.value);
      });
    };
    kind.addEventListener("change", show);
    show();
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
