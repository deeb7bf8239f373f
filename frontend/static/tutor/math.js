// Render the math elements that tutor/rendering.py leaves in the page (<span class="math" data-tex>).
window.renderMath = function (root) {
  if (!window.katex) return;
  (root || document).querySelectorAll(".math[data-tex]:not([data-rendered])").forEach(function (el) {
    window.katex.render(el.dataset.tex, el, { displayMode: el.classList.contains("display"), throwOnError: false });
    el.dataset.rendered = "1";
  });
};
document.addEventListener("DOMContentLoaded", function () { window.renderMath(); });
