// The web face's only script: progressive enhancement of server-rendered pages.
// - <pre class="mermaid"> blocks are drawn by the mermaid the Hub serves itself (strict mode:
//   labels are sanitised, no click handlers from diagram text);
// - tables with class "sortable" sort by a click on a column header;
// - a graph with a JSON node map (#graph-links) gets its nodes linked to their pages.
// Pages read fine without it.

async function drawGraphs() {
  const blocks = document.querySelectorAll("pre.mermaid");
  const src = document.body.dataset.mermaid;
  if (!blocks.length || !src) return;
  const { default: mermaid } = await import(src);
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
  await mermaid.run({ nodes: blocks });
  linkGraphNodes();
  document.body.dataset.graphs = "drawn";
}

function linkGraphNodes() {
  const data = document.getElementById("graph-links");
  if (!data) return;
  const links = JSON.parse(data.textContent);
  for (const node of document.querySelectorAll("pre.mermaid g.node")) {
    const id = (node.id.match(/flowchart-(.+)-\d+$/) || [])[1];
    const href = id && links[id];
    if (!href || !href.startsWith("/")) continue;
    node.classList.add("linked");
    node.setAttribute("role", "link");
    node.setAttribute("tabindex", "0");
    node.addEventListener("click", () => { window.location.assign(href); });
    node.addEventListener("keydown", (e) => { if (e.key === "Enter") window.location.assign(href); });
  }
}

function cellValue(row, i) {
  const cell = row.cells[i];
  const raw = cell ? (cell.dataset.value ?? cell.textContent.trim()) : "";
  const num = Number.parseFloat(raw);
  return Number.isNaN(num) ? raw.toLowerCase() : num;
}

function sortBy(table, i, th) {
  const body = table.tBodies[0];
  const descending = th.getAttribute("aria-sort") !== "descending";
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, i), y = cellValue(b, i);
    const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
    return descending ? -order : order;
  });
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  body.append(...rows);
}

function sortableTables() {
  for (const table of document.querySelectorAll("table.sortable")) {
    Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.append(...th.childNodes);
      th.append(button);
      button.addEventListener("click", () => sortBy(table, i, th));
    });
  }
}

sortableTables();
drawGraphs().catch((err) => {
  document.body.dataset.graphs = "failed";
  console.warn("graphs not drawn:", err);
});
