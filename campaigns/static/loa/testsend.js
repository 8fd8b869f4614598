// The review step's "Send a test" box: shows the contact picker or the value fields for the
// chosen source, and searches contacts by name or phone (campaigns/admin/wizard/testsend.py).
(function () {
  "use strict";
  const form = document.getElementById("test-send-form");
  if (!form) return;
  const contactBox = document.getElementById("test-send-contact-box");
  const valuesBox = document.getElementById("test-send-values-box");
  const select = document.getElementById("test-send-contact");
  const search = document.getElementById("test-send-contact-search");

  function showSource() {
    const checked = form.querySelector("input[name=source]:checked");
    const typed = checked && checked.value === "values";
    if (contactBox) contactBox.hidden = typed;
    if (valuesBox) valuesBox.hidden = !typed;
  }
  form.querySelectorAll("input[name=source]").forEach((r) => r.addEventListener("change", showSource));
  showSource();

  let timer = null;
  if (search && select) {
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const url = form.dataset.contactsUrl + "?q=" + encodeURIComponent(search.value);
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok) return;
        const data = await response.json();
        select.replaceChildren(
          ...data.results.map((c) => {
            const option = document.createElement("option");
            option.value = c.id;
            option.textContent = c.text;
            return option;
          })
        );
      }, 250);
    });
  }
})();
