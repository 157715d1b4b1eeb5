/* tmis pages: progressive enhancement only. Every form works without this file. No inline scripts (CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  // Charts: <div class="chart" data-chart="bar" data-series='[{"label":…,"count":…}]'>; the table beside it
  // holds the same numbers.
  function drawCharts() {
    if (!window.echarts) { return; }  // the table beside each chart holds the same numbers
    document.querySelectorAll(".chart[data-series]").forEach(function (el) {
      var rows = JSON.parse(el.getAttribute("data-series") || "[]");
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        grid: { left: 40, right: 10, top: 10, bottom: 60 },
        tooltip: {},
        xAxis: { type: "category", data: rows.map(function (r) { return r.label; }), axisLabel: { interval: 0, rotate: 30 } },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: rows.map(function (r) { return r.count; }), itemStyle: { color: "#1f4e8c" } }]
      });
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  // Confirmation for destructive or bulk actions: <button data-confirm="…">.
  function confirmations() {
    document.addEventListener("submit", function (ev) {
      var btn = ev.submitter || ev.target.querySelector("[data-confirm]");
      var msg = (btn && btn.getAttribute("data-confirm")) || ev.target.getAttribute("data-confirm");
      if (msg && !window.confirm(msg)) { ev.preventDefault(); }
    });
  }

  // Code pickers: <input list=…> already searches; a <select data-filter> gets a search box above it.
  function filterableSelects(root) {
    root.querySelectorAll("select[data-filter]").forEach(function (sel) {
      if (sel.previousElementSibling && sel.previousElementSibling.hasAttribute("data-filter-box")) { return; }
      var box = document.createElement("input");
      box.type = "search";
      box.className = "form-control form-control-sm mb-1";
      box.placeholder = "输入代码或名称筛选";
      box.setAttribute("data-filter-box", "");
      box.setAttribute("aria-label", "筛选" + (sel.getAttribute("aria-label") || ""));
      sel.parentNode.insertBefore(box, sel);
      box.addEventListener("input", function () {
        var q = box.value.trim().toLowerCase();
        Array.prototype.forEach.call(sel.options, function (o) {
          o.hidden = q !== "" && o.value !== "" && o.text.toLowerCase().indexOf(q) < 0 && o.value.toLowerCase().indexOf(q) < 0;
        });
      });
    });
  }

  // Cascades: <select data-parent="FIELD"> shows only the options whose data-parents contain the parent's value.
  function cascades(root) {
    root.querySelectorAll("select[data-parent]").forEach(function (child) {
      var form = child.form;
      var parent = form && form.querySelector("[name='" + child.getAttribute("data-parent") + "']");
      if (!parent) { return; }
      function apply() {
        var p = parent.value;
        Array.prototype.forEach.call(child.options, function (o) {
          var ps = (o.getAttribute("data-parents") || "").split(" ").filter(Boolean);
          o.disabled = p !== "" && ps.length > 0 && ps.indexOf(p) < 0;
          o.hidden = o.disabled;
        });
        if (child.selectedOptions.length && child.selectedOptions[0].disabled) { child.value = ""; }
      }
      parent.addEventListener("change", apply);
      apply();
    });
  }

  // Multi-record groups: "add a record" clones the empty template row; "remove" drops a row.
  function recordRows() {
    document.addEventListener("click", function (ev) {
      var add = ev.target.closest("[data-add-row]");
      if (add) {
        var list = document.getElementById(add.getAttribute("data-add-row"));
        var tpl = list && list.querySelector("template");
        if (tpl) {
          var n = list.querySelectorAll(".record-row").length;
          var html = tpl.innerHTML.split("__INDEX__").join(String(n));
          tpl.insertAdjacentHTML("beforebegin", html);
          var added = tpl.previousElementSibling;
          filterableSelects(added);
          cascades(added);
          if (window.htmx) { window.htmx.process(added); }
          ev.preventDefault();
        }
      }
    });
    // 删除本条 is a checkbox (it works without JavaScript); here it only greys the row out.
    document.addEventListener("change", function (ev) {
      var remove = ev.target.closest && ev.target.closest("[data-remove-row]");
      var row = remove && remove.closest(".record-row");
      if (row) { row.classList.toggle("row-removed", remove.checked); }
    });
  }

  // 行政区划 suggestions (htmx fragment): a click puts the code into its input.
  function divisionPicks() {
    document.addEventListener("click", function (ev) {
      var pick = ev.target.closest && ev.target.closest("[data-pick-code]");
      if (!pick) { return; }
      var input = document.querySelector("[name='" + pick.getAttribute("data-pick-for") + "']");
      if (input) { input.value = pick.getAttribute("data-pick-code"); input.focus(); }
      var list = pick.closest("[data-division-list]");
      if (list) { list.remove(); }
      ev.preventDefault();
    });
  }

  // Select all rows of a list for a bulk action.
  function selectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        document.querySelectorAll("input[name='" + box.getAttribute("data-select-all") + "']").forEach(function (c) { c.checked = box.checked; });
      });
    });
  }

  // Tasks with progress: <div data-task-url="…/status"> polls until the task ends, then reloads the page.
  function taskProgress() {
    document.querySelectorAll("[data-task-url]").forEach(function (el) {
      var url = el.getAttribute("data-task-url");
      var bar = el.querySelector("progress");
      var text = el.querySelector("[data-task-text]");
      function poll() {
        fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (t) {
            if (bar && t.total) { bar.max = t.total; bar.value = t.done; }
            if (text) { text.textContent = t.state_label + " " + t.done + " / " + (t.total || "?"); }
            if (t.finished) { window.location.reload(); } else { window.setTimeout(poll, 800); }
          })
          .catch(function () { window.setTimeout(poll, 2000); });
      }
      poll();
    });
  }

  ready(function () {
    drawCharts();
    confirmations();
    filterableSelects(document);
    cascades(document);
    recordRows();
    divisionPicks();
    selectAll();
    taskProgress();
  });
})();
