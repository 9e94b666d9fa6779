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

  // On a re-rendered form with errors, move focus to the error summary once.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector("[data-autofocus]");
    if (summary) { summary.focus(); }
  });
})();
