// The Analytics page: a tooltip for the chart's points (pointer and keyboard) and the Share
// link's copy button. The page works without it: each point has an SVG <title> and the
// numbers are in the table under the chart.
(function () {
  "use strict";
  var chart = document.getElementById("chart");
  var tip = document.getElementById("chart-tooltip");
  if (chart && tip) {
    var line = function (cls, text) {
      var el = document.createElement("div");
      el.className = cls;
      el.textContent = text;
      tip.appendChild(el);
    };
    var show = function (point) {
      var d = point.dataset;
      tip.textContent = "";
      line("tip-period", d.period + " (" + d.dates + ")");
      line("tip-repo", d.repo);
      line("tip-pulls", "Pulls: " + d.pulls);
      line("tip-unique-ips", "Unique IPs: " + d.uniqueIps);
      line("tip-version-checks", "Version checks: " + d.versionChecks);
      var box = chart.getBoundingClientRect();
      var p = point.getBoundingClientRect();
      var wrap = chart.parentNode.getBoundingClientRect();
      tip.hidden = false;
      var left = p.left - wrap.left + p.width / 2 + 10;
      if (left + tip.offsetWidth > box.right - wrap.left) {
        left = p.left - wrap.left - tip.offsetWidth - 10;
      }
      tip.style.left = Math.max(0, left) + "px";
      tip.style.top = Math.max(0, p.top - wrap.top - tip.offsetHeight / 2) + "px";
      point.classList.add("active");
    };
    var hide = function (point) {
      tip.hidden = true;
      if (point) point.classList.remove("active");
    };
    var pointOf = function (e) {
      var t = e.target;
      return t && t.classList && t.classList.contains("point") ? t : null;
    };
    chart.addEventListener("mouseover", function (e) { var p = pointOf(e); if (p) show(p); });
    chart.addEventListener("mouseout", function (e) { var p = pointOf(e); if (p) hide(p); });
    chart.addEventListener("focusin", function (e) { var p = pointOf(e); if (p) show(p); });
    chart.addEventListener("focusout", function (e) { var p = pointOf(e); if (p) hide(p); });
  }
  var copy = document.getElementById("copy-share");
  var status = document.getElementById("copy-status");
  if (copy && status) {
    copy.addEventListener("click", function () {
      var text = copy.getAttribute("data-copy");
      var done = function () { status.textContent = "Link copied."; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () {
          status.textContent = "Copy the link: " + text;
        });
      } else {
        status.textContent = "Copy the link: " + text;
      }
    });
  }
})();
