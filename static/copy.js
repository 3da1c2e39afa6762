// Copy buttons: <button data-copy="ELEMENT_ID">. Progressive enhancement only: without this
// script the value stays visible and selectable. Served as a file for the CSP (script-src 'self').
(function () {
  "use strict";
  function copyFrom(el) {
    var text = el.value !== undefined ? el.value : el.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Older browsers and plain-http origins other than localhost.
    el.focus();
    if (el.select) { el.select(); }
    var ok = document.execCommand && document.execCommand("copy");
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) { return; }
    var label = button.textContent;
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      copyFrom(target).then(function () {
        button.textContent = "Copied";
        if (status) { status.textContent = "Copied to the clipboard."; }
      }, function () {
        if (target.select) { target.select(); }
        if (status) { status.textContent = "Select the text and copy it by hand."; }
      });
      window.setTimeout(function () { button.textContent = label; }, 4000);
    });
  });
})();
