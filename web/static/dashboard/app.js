// app.js: owns the dashboard's frame: it shows the screen of the current route (router.js) in
// <main>, closing the previous one (its polls and watches stop), marks the current link of the
// navigation, and moves focus to the new screen for keyboard and screen reader users.

import { el } from "./dom.js";
import { followRoutes } from "./router.js";
import { showRun } from "./run_view.js";
import { showRunsList } from "./runs_list.js";
import { showServerPanel } from "./server_panel.js";
import { showStart } from "./start_view.js";

const SCREENS = {
  runs: { title: "Runs", show: showRunsList },
  run: { title: "Run", show: showRun },
  start: { title: "Start a run", show: showStart },
  server: { title: "Server", show: showServerPanel },
};

const main = document.getElementById("screen");
let closeScreen = () => {};

function show(route) {
  closeScreen();
  const screen = SCREENS[route.name];
  const container = el("div", { class: `screen screen-${route.name}`, dataset: { screen: route.name } });
  main.replaceChildren(container);
  closeScreen = screen.show(container, route);
  document.title = `${screen.title}${route.runId ? ` ${route.runId.slice(0, 8)}` : ""} · runcast`;
  const section = route.name === "run" ? "runs" : route.name;
  for (const link of document.querySelectorAll("nav.main-nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.focus({ preventScroll: true });
}

followRoutes(show);
