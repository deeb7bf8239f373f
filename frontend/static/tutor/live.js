// The live view: rows come from the page (live-rows) and then from the class's socket, one learner at a time
// after each of their actions. Durations tick locally; "no action for N minutes" is worked out here too, since a
// learner who has gone quiet sends nothing.
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const idleMinutes = Number(root.dataset.idleMinutes);
  const activeMinutes = Number(root.dataset.activeMinutes);
  const learnerUrl = (id) => root.dataset.learnerUrl.replace(/0\/$/, `${id}/`);
  const status = document.getElementById("live-status");
  const rows = new Map(); // learner id -> {row, at: when it arrived (ms)}
  for (const row of JSON.parse(document.getElementById("live-rows").textContent)) {
    rows.set(row.learner_id, { row, at: Date.now() });
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, "0")} s`;
    return `${Math.floor(seconds / 3600)} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")} min`;
  }

  function el(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    return node;
  }

  function learnerLink(row) {
    return el("a", row.name, { href: learnerUrl(row.learner_id) });
  }

  function reasons(entry, elapsed) {
    const idle = entry.row.idle_seconds + elapsed;
    const list = entry.row.needs_help.filter((reason) => reason.kind !== "idle");
    if (idle >= idleMinutes * 60) {
      const minutes = Math.floor(idle / 60);
      list.push({ kind: "idle", text: `No action for ${minutes === 1 ? "1 minute" : `${minutes} minutes`}` });
    }
    return list;
  }

  function render() {
    const now = Date.now();
    const body = document.querySelector("#practising tbody");
    const help = document.getElementById("needs-help");
    body.replaceChildren();
    help.replaceChildren();
    const entries = [...rows.values()].sort((a, b) => a.row.name.localeCompare(b.row.name));
    let helpCount = 0;
    for (const entry of entries) {
      const elapsed = (now - entry.at) / 1000;
      const { row } = entry;
      if (row.idle_seconds + elapsed >= activeMinutes * 60) {
        rows.delete(row.learner_id);
        continue;
      }
      const tr = el("tr", undefined, { "data-learner": row.learner_id });
      const th = el("th", undefined, { scope: "row" });
      th.append(learnerLink(row));
      tr.append(
        th,
        el("td", row.item),
        el("td", row.step ? `${row.step} of ${row.step_count}` : ""),
        el("td", duration(row.item_seconds + elapsed)),
        el("td", duration(row.session_seconds + elapsed)),
        el("td", `${duration(row.idle_seconds + elapsed)} ago`),
      );
      body.append(tr);
      const why = reasons(entry, elapsed);
      if (why.length) {
        helpCount += 1;
        const li = el("li", undefined, { "data-learner": row.learner_id });
        li.append(learnerLink(row), ": ");
        for (const reason of why) li.append(el("span", reason.text, { class: `reason-tag ${reason.kind}` }));
        help.append(li);
      }
    }
    document.getElementById("active-count").textContent = rows.size;
    document.getElementById("nobody-practising").hidden = rows.size > 0;
    document.getElementById("nobody-needs-help").hidden = helpCount > 0;
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/teach/class/${root.dataset.classroom}/live/`);
    socket.addEventListener("open", () => {
      status.textContent = "live";
      status.dataset.state = "open";
      delay = 1000;
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type !== "learner") return;
      if (message.row) rows.set(message.learner_id, { row: message.row, at: Date.now() });
      else rows.delete(message.learner_id);
      render();
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4403) {
        status.textContent = "not available to your account";
        status.dataset.state = "refused";
        return;
      }
      status.textContent = "reconnecting…";
      status.dataset.state = "closed";
      setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
    });
  }

  render();
  setInterval(render, 5000);
  connect(1000);
})();
