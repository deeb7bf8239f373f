// The skill graph: cytoscape with the dagre layout (prerequisites above the skills that need them), each node
// coloured by its mastery band; a click lists the skill's items in the side panel.
(function () {
  const container = document.getElementById("skill-graph");
  if (!container || typeof cytoscape === "undefined") return;
  const graph = JSON.parse(document.getElementById("graph-data").textContent);
  const itemsUrl = document.getElementById("graph-urls").dataset.items;
  const style = getComputedStyle(document.documentElement);
  const colours = {
    proficient: style.getPropertyValue("--proficient").trim(),
    near: style.getPropertyValue("--near").trim(),
    "needs-help": style.getPropertyValue("--needs-help").trim(),
    "not-started": "#c9ced8",
  };
  const elements = [
    ...graph.nodes.map((node) => ({
      data: {
        ...node,
        id: node.id,
        caption: node.percent === null ? `${node.label}\n–` : `${node.label}\n${node.percent} %`,
        colour: colours[node.band],
      },
    })),
    ...graph.edges.map((edge) => ({ data: edge })),
  ];
  const cy = cytoscape({
    container,
    elements,
    layout: { name: "dagre", rankDir: "TB", nodeSep: 20, rankSep: 50 },
    wheelSensitivity: 0.3,
    style: [
      {
        selector: "node",
        style: {
          shape: "round-rectangle",
          "background-color": "data(colour)",
          label: "data(caption)",
          "text-wrap": "wrap",
          "text-max-width": 120,
          "text-valign": "center",
          "font-size": 12,
          "min-zoomed-font-size": 6,
          color: "#111",
          width: 140,
          height: 48,
          "border-width": 1,
          "border-color": "#555",
        },
      },
      { selector: "node:selected", style: { "border-width": 4, "border-color": "#ffbf47" } },
      {
        selector: "edge",
        style: { width: 1.5, "line-color": "#8a93a3", "target-arrow-color": "#8a93a3", "target-arrow-shape": "triangle", "curve-style": "bezier" },
      },
    ],
  });
  const panel = document.getElementById("skill-panel");

  function show(node) {
    const data = node.data();
    panel.replaceChildren();
    const heading = document.createElement("h2");
    heading.textContent = data.label;
    const mastery = document.createElement("p");
    mastery.textContent = data.percent === null ? "Not started." : `Mastery ${data.percent} % (${data.started} started).`;
    const list = document.createElement("ul");
    list.id = "skill-items";
    const shown = data.items.slice(0, 12); // templated skills have dozens of items: the analysis lists them all
    for (const item of shown) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = `${itemsUrl}?skill=${data.skill_id}#item-${item.id}`;
      link.textContent = item.title;
      li.append(link);
      list.append(li);
    }
    const all = document.createElement("p");
    const link = document.createElement("a");
    link.href = `${itemsUrl}?skill=${data.skill_id}`;
    link.textContent = data.items.length > shown.length
      ? `All ${data.items.length} items, with their statistics`
      : `Item analysis for ${data.label}`;
    all.append(link);
    panel.append(heading, mastery, data.items.length ? list : "No items practise this skill.", all);
  }

  cy.on("tap", "node", (event) => show(event.target));
  container.dataset.ready = "true";
  window.skillGraph = cy; // for the browser test and the console
})();
