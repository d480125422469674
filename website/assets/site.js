// Sortable tables (keyboard: the header buttons) and, when served live, a reload on new results.
"use strict";

function cellValue(row, index, type) {
  const cell = row.children[index];
  const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
  if (type !== "number") return raw.toLowerCase();
  const number = parseFloat(raw);
  return Number.isNaN(number) ? null : number;
}

function sortBy(table, index, type, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index, type);
    const y = cellValue(b, index, type);
    if (x === y) return 0;
    if (x === null) return 1;  // unknown values last, whatever the direction
    if (y === null) return -1;
    return (x < y ? -1 : 1) * (descending ? -1 : 1);
  });
  rows.forEach((row) => body.appendChild(row));
}

document.querySelectorAll("table.sortable").forEach((table) => {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, index) => {
    const button = th.querySelector("button");
    if (!button) return;
    th.setAttribute("aria-sort", "none");
    button.addEventListener("click", () => {
      const descending = th.getAttribute("aria-sort") === "ascending";
      headers.forEach((other) => other.hasAttribute("aria-sort") && other.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      sortBy(table, index, th.dataset.type, descending);
    });
  });
});

const live = document.body.dataset.live;
if (live) {
  let seen = null;
  const check = () =>
    fetch(live, { cache: "no-store" })
      .then((answer) => answer.json())
      .then((state) => {
        if (seen !== null && state.version !== seen) window.location.reload();
        seen = state.version;
      })
      .catch(() => {});
  check();
  setInterval(check, 10000);
}
