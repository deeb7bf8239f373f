// The heatmap's hover text: "learner · skill: 87 % (12 tries)", made from the headers when a cell is first hovered
// (18,000 title attributes in the HTML would double the page).
(function () {
  const table = document.getElementById("heatmap");
  if (!table) return;
  const skills = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
  table.tBodies[0].addEventListener("mouseover", (event) => {
    const cell = event.target.closest("td");
    if (!cell || cell.title) return;
    const learner = cell.parentElement.cells[0].textContent.trim();
    const skill = skills[cell.cellIndex];
    const value = cell.classList.contains("ns") ? "not started" : `${cell.textContent} % (${cell.dataset.n} tries)`;
    cell.title = `${learner} · ${skill}: ${value}`;
  });
})();
