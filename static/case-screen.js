// The case screen's action tabs become ARIA tabs: switched in place, arrow keys move between
// them, an access key opens one and puts the cursor in its first field. Without JavaScript
// each tab is a link to the page with ?tab= and everything works the same.
(function () {
  "use strict";
  var list = document.getElementById("case-tabs");
  if (!list) { return; }
  var tabs = Array.prototype.slice.call(list.querySelectorAll("a[data-tab]"));
  list.setAttribute("role", "tablist");
  list.setAttribute("aria-orientation", window.matchMedia("(min-width: 64rem)").matches ? "vertical" : "horizontal");
  function panelOf(tab) { return document.getElementById("panel-" + tab.dataset.tab); }
  tabs.forEach(function (tab) {
    var selected = tab.getAttribute("aria-current") === "page";
    tab.parentNode.setAttribute("role", "presentation");
    tab.setAttribute("role", "tab");
    tab.removeAttribute("aria-current");
    tab.setAttribute("aria-selected", selected ? "true" : "false");
    tab.setAttribute("aria-controls", "panel-" + tab.dataset.tab);
    tab.tabIndex = selected ? 0 : -1;
    var panel = panelOf(tab);
    panel.setAttribute("role", "tabpanel");
    panel.tabIndex = 0;
  });
  function select(tab, focusField) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      panelOf(t).hidden = !on;
    });
    var url = new URL(window.location.href);
    url.searchParams.set("tab", tab.dataset.tab);
    window.history.replaceState(null, "", url);
    if (focusField) {
      var first = panelOf(tab).querySelector("select, textarea, input:not([type=hidden]), button");
      (first || tab).focus();
    } else {
      tab.focus();
    }
  }
  list.addEventListener("click", function (event) {
    var tab = event.target.closest("a[data-tab]");
    if (!tab) { return; }
    event.preventDefault();
    select(tab, true);
  });
  list.addEventListener("keydown", function (event) {
    var i = tabs.indexOf(document.activeElement);
    if (i < 0) { return; }
    var next = { ArrowDown: i + 1, ArrowRight: i + 1, ArrowUp: i - 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) { return; }
    event.preventDefault();
    select(tabs[(next + tabs.length) % tabs.length], false);
  });
  // Alt+letter (also with Shift) as the access keys say, in every browser: the tabs and "next
  // case" carry the letter in their accesskey attribute.
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey || !/^Key[A-Z]$/.test(event.code)) { return; }
    var key = event.code.slice(3).toLowerCase();
    var target = document.querySelector(".case-screen [accesskey='" + key + "']");
    if (!target) { return; }
    event.preventDefault();
    if (target.dataset.tab) { select(target, true); } else { target.click(); }
  });
}());
