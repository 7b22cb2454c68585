// Drives the operator page (GET /) in Debian's headless chromium the way an operator would: saves the token,
// starts a grid broadcast of ROOM to HLS, waits for its live preview to play, switches it to the speaker
// layout when a line "switch" arrives on stdin (so the test can look at the grid first), puts graphics on air from
// the card's controls on a line "graphics" (a title, the logo, a lower third for the first participant listed) and
// takes the title and the logo off on a line "clear", then stops it when a line "stop" arrives. Prints one JSON
// line per step on stdout ({"step":"live",...}, {"step":"switched"}, {"step":"graphics","participant":...},
// {"step":"cleared"}, {"step":"ended"}); everything else goes to stderr.
// Usage: node operator.mjs BASE_URL TOKEN ROOM [SHOT.png]   (exit 0 once ended, 1 on any failure; the optional
// screenshot is taken once the card lists the graphics on air)
import { launchViewer } from "./chromium.mjs";
import { createInterface } from "node:readline";

const [base, token, room, shot] = process.argv.slice(2);
if (!base || !token || !room) {
  console.error("usage: node operator.mjs BASE_URL TOKEN ROOM [SHOT.png]");
  process.exit(2);
}
const step = (obj) => console.log(JSON.stringify(obj));

// Resolves on the first stdin line `word`; rejects if stdin ends without one.
const stdinLines = createInterface({ input: process.stdin });
const lineFromTest = (word) => {
  const line = new Promise((resolve, reject) => {
    stdinLines.on("line", (line) => { if (line.trim() === word) resolve(); });
    stdinLines.on("close", () => reject(new Error(`stdin closed before a line "${word}"`)));
  });
  line.catch(() => {}); // only awaited at its step; not an unhandled rejection before that
  return line;
};
const switchLine = lineFromTest("switch");
const graphicsLine = lineFromTest("graphics");
const clearLine = lineFromTest("clear");
const stopLine = lineFromTest("stop");

const browser = await launchViewer();
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await browser.close(); process.exit(1); });

let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("console", (msg) => console.error(`page console.${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));

  // 1. Token, then the layout list it unlocks.
  await page.goto(`${base}/`);
  await page.fill("#token", token);
  await page.click("#save-token");
  await page.waitForFunction(() => document.querySelector("#template").options.length > 0, null, { timeout: 10000 })
    .catch(async (e) => { throw new Error(`no layouts after saving the token (${await page.textContent("#auth-message")}): ${e.message}`); });

  // 2. The start form. The broadcast id comes from the POST's answer, so other broadcasts on the page don't matter.
  await page.selectOption("#source-kind", "room");
  await page.fill("#room", room);
  await page.selectOption("#template", "grid");
  await page.selectOption("#size", "640x360");
  await page.setChecked("#hls", true);
  await page.fill("#rtmp-urls", "");
  const [created] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/v1/broadcasts"),
    page.click("#start"),
  ]);
  if (created.status() !== 201) {
    const formError = await page.textContent("#form-error").catch(() => "");
    throw new Error(`POST /v1/broadcasts answered ${created.status()}: ${await created.text()} (page: ${formError})`);
  }
  const { id } = await created.json();
  const card = `.broadcast[data-id="${id}"]`;
  console.error(`started ${id}`);

  // 3. Live, and the card's preview has played more than 2 s.
  await page.waitForFunction((card) => {
    const el = document.querySelector(card);
    const video = el?.querySelector("video");
    return el?.querySelector(".state")?.textContent.trim() === "live" && video && video.currentTime > 2;
  }, card, { timeout: 30000, polling: 250 });
  const currentTime = await page.$eval(`${card} video`, (v) => v.currentTime);
  step({ step: "live", id, currentTime });

  // 4. On request, switch the layout from the card, then check what the API says.
  console.error("waiting for a line \"switch\" on stdin");
  await switchLine;
  await page.click(`${card} .layout-switch[data-template="speaker"]`);
  await page.waitForFunction(async ({ id, token }) => {
    const res = await fetch(`/v1/broadcasts/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    return res.ok && (await res.json()).layout?.template === "speaker";
  }, { id, token }, { timeout: 10000, polling: 250 });
  step({ step: "switched" });

  // 5. On request, graphics from the card's controls, each a PATCH the server must take.
  console.error("waiting for a line \"graphics\" on stdin");
  await graphicsLine;
  const patched = async (what, action) => {
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "PATCH" && new URL(r.url()).pathname === `/v1/broadcasts/${id}`),
      action(),
    ]);
    if (res.status() !== 200) throw new Error(`${what}: PATCH answered ${res.status()}: ${await res.text()}`);
  };
  const participant = await page.$eval(`${card} .participants .lower-third`, (el) => el.dataset.participant);
  await page.fill(`${card} .title-text`, "Town hall");
  await patched("title", () => page.click(`${card} .title-apply`));
  await patched("logo on", () => page.check(`${card} .logo-toggle`));
  await page.fill(`${card} .lower-third[data-participant="${participant}"]`, "Host");
  await patched("lower third", () => page.click(`${card} .lower-third-apply[data-participant="${participant}"]`));
  await page.waitForFunction((card) => document.querySelector(`${card} .overlays-on-air`)?.textContent.includes("lower-third"),
    card, { timeout: 10000, polling: 250 });
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  step({ step: "graphics", participant });

  console.error("waiting for a line \"clear\" on stdin");
  await clearLine;
  await patched("title off", () => page.click(`${card} .title-clear`));
  await patched("logo off", () => page.uncheck(`${card} .logo-toggle`));
  step({ step: "cleared" });

  // 6. Stop on request, and wait for the card to say so.
  console.error("waiting for a line \"stop\" on stdin");
  await stopLine;
  await page.click(`${card} .stop`);
  await page.waitForFunction((card) => {
    return document.querySelector(`${card} .state`)?.textContent.trim().startsWith("ended");
  }, card, { timeout: 30000, polling: 250 });
  step({ step: "ended" });
} catch (e) {
  console.error(e?.stack || String(e));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code); // stdin may still be open
