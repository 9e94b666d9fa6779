// flagsvc UI: small progressive enhancements. Every form works without this file.
(function () {
  "use strict";

  // Ask before destructive submits (kill switch, retire): data-confirm on the form or button.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // After htmx swaps part of the page, put focus back where it was (same id), or on
  // the first alert in the new content, so keyboard and screen-reader users keep their place.
  var lastFocusedId = null;
  document.addEventListener("htmx:before:request", function () {
    var active = document.activeElement;
    lastFocusedId = active && active.id ? active.id : null;
  });
  document.addEventListener("htmx:after:swap", function () {
    var again = lastFocusedId && document.getElementById(lastFocusedId);
    if (again && again !== document.activeElement && again.tagName === "BUTTON") {
      again.focus();
      return;
    }
    var alert = document.querySelector("[data-autofocus]");
    if (alert) { alert.focus(); }
  });

  // The menu folds behind "Menu" on small screens; wide ones show it through CSS
  // (::details-content). Browsers without that selector get it opened here instead.
  var menu = document.querySelector("details.menu");
  if (menu && window.CSS && !CSS.supports("selector(::details-content)") && window.matchMedia) {
    var wide = window.matchMedia("(min-width: 761px)");
    var openWhenWide = function () { menu.open = wide.matches; };
    if (wide.addEventListener) { wide.addEventListener("change", openWhenWide); }
    openWhenWide();
  }

  // Copy buttons: data-copy names the element whose value (input) or text (pre) to copy.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    var text = source.value !== undefined ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // A page answering a POST without a redirect (a secret shown once) names the URL a
  // reload should fetch instead, so reloading never re-sends the form.
  var replaced = document.querySelector("[data-replace-url]");
  if (replaced && window.history.replaceState) {
    window.history.replaceState(null, "", replaced.getAttribute("data-replace-url"));
  }

  // A new flag's form: the variation rows only matter for a typed flag; hide them while
  // "Boolean" is chosen (without JavaScript they stay, and a boolean flag ignores empty rows).
  var valueType = document.getElementById("flag-value_type");
  var rows = document.querySelector("#flag-variations[data-variations]");
  if (valueType && rows) {
    var follow = function () {
      rows.hidden = valueType.value === "boolean" && !rows.querySelector(".field-error");
    };
    valueType.addEventListener("change", follow);
    follow();
  }

  // Cohort rules: add and remove rows freely. Without JavaScript the editor offers blank
  // rows (and two more after each save); rows left empty are ignored by the server.
  var rules = document.querySelector("fieldset.rules");
  var count = rules && rules.querySelector("input[name=rule_rows]");
  var body = rules && rules.querySelector("tbody");
  if (rules && count && body) {
    var removeButton = function (row) {
      var cell = row.lastElementChild;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "subtle remove-rule";
      remove.textContent = "Remove";
      var attribute = row.querySelector("input");
      remove.setAttribute("aria-label", "Remove rule " + (attribute ? attribute.id.split("-")[2] * 1 + 1 : ""));
      remove.addEventListener("click", function () {
        var next = row.nextElementSibling || row.previousElementSibling;
        row.parentNode.removeChild(row);
        var focus = next ? next.querySelector("input") : rules.querySelector(".add-rule");
        if (focus) { focus.focus(); }
      });
      cell.appendChild(remove);
    };
    Array.prototype.forEach.call(body.querySelectorAll("tr"), removeButton);
    var add = document.createElement("button");
    add.type = "button";
    add.className = "add-rule";
    add.textContent = "Add a rule";
    add.addEventListener("click", function () {
      var template = body.querySelector("tr");
      var index = parseInt(count.value, 10) || 0;
      if (!template || index >= 50) { return; }
      var row = template.cloneNode(true);
      var old = row.querySelector(".remove-rule");
      if (old) { old.parentNode.removeChild(old); }
      Array.prototype.forEach.call(row.querySelectorAll("[id],[for],[name],[aria-describedby]"), function (el) {
        ["id", "for", "name"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) { el.setAttribute(attr, value.replace(/rules-\d+/, "rules-" + index)); }
        });
        el.removeAttribute("aria-describedby");
        el.removeAttribute("aria-invalid");
      });
      Array.prototype.forEach.call(row.querySelectorAll("label.visually-hidden"), function (label) {
        label.textContent = label.textContent.replace(/\d+$/, String(index + 1));
      });
      Array.prototype.forEach.call(row.querySelectorAll(".field-error"), function (el) { el.parentNode.removeChild(el); });
      Array.prototype.forEach.call(row.querySelectorAll("input, textarea"), function (el) { el.value = ""; });
      var select = row.querySelector("select");
      if (select) { select.selectedIndex = 0; }
      body.appendChild(row);
      count.value = String(index + 1);
      removeButton(row);
      row.querySelector("input").focus();
    });
    rules.appendChild(add);
  }

  // On a re-rendered form with errors, move focus to the error summary once.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-autofocus]");
    if (summary) { summary.focus(); }
  });
})();
