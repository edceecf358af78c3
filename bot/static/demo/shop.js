/* The demo shop's own script (not part of the bubble): language switch and a toy cart. */
(function () {
  "use strict";
  var KEY = "demo-shop:lang";
  function saved() { try { return localStorage.getItem(KEY); } catch (e) { return null; } }
  function browser() { return String(navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en"; }
  function apply(lang) {
    document.documentElement.setAttribute("data-lang", lang);
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    if (window.KefuWidget && saved()) window.KefuWidget.setLanguage(lang); // only an explicit choice overrides "auto"
  }
  apply(saved() || browser());
  document.addEventListener("kefu:ready", function () { if (saved()) window.KefuWidget.setLanguage(saved()); });
  document.addEventListener("click", function (e) {
    var target = e.target.closest ? e.target : null;
    if (!target) return;
    if (target.closest("[data-switch-lang]")) {
      var next = document.documentElement.getAttribute("data-lang") === "zh" ? "en" : "zh";
      try { localStorage.setItem(KEY, next); } catch (err) { /* private mode */ }
      apply(next);
    }
    var add = target.closest("[data-add-to-cart]");
    if (add) {
      var count = document.getElementById("cart-count");
      count.textContent = String(Number(count.textContent) + 1);
      add.classList.add("added");
      setTimeout(function () { add.classList.remove("added"); }, 800);
    }
  });
})();
