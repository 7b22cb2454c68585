// A web app on its own origin publishing into callcast over WHIP with a third-party client (whip-whep's
// WHIPClient from npm, unmodified): a page served by this script on another port of 127.0.0.1, in Debian's
// headless chromium with a fake camera (a looping Y4M file) and microphone. The client offers before gathering
// and trickles its candidates with PATCH, so this also exercises trickle ICE.
// Prints one JSON line once connected: {"location", "origin", "patches": [statuses]}; then, on the line "stop"
// on standard input, stops the client (its DELETE) and prints {"stopped": true}.
// Usage: node whip_publish.mjs WHIP_URL TOKEN CAMERA.y4m
import { launchPublisher } from "./chromium.mjs";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const [whipUrl, token, camera] = process.argv.slice(2);
const client = readFileSync(fileURLToPath(new URL("./node_modules/whip-whep/whip.js", import.meta.url)));
const page = `<!doctype html><script type="module">
import { WHIPClient } from "/whip.js";
window.WHIPClient = WHIPClient;
</script>`;
const site = createServer((req, res) => {
  if (req.url === "/whip.js") {
    res.writeHead(200, { "content-type": "text/javascript" }).end(client);
  } else {
    res.writeHead(200, { "content-type": "text/html" }).end(page);
  }
});
await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${site.address().port}`;

const browser = await launchPublisher(camera);
const tab = await browser.newPage();
tab.on("console", (msg) => console.error(`page: ${msg.text()}`));
await tab.goto(origin);
await tab.waitForFunction(() => window.WHIPClient !== undefined);
try {
  const published = await tab.evaluate(async ({ whipUrl, token }) => {
    // Every PATCH the client sends, with the status it got.
    window.__patches = [];
    const fetch0 = window.fetch;
    window.fetch = async (url, init) => {
      const response = await fetch0(url, init);
      if (init && init.method === "PATCH") window.__patches.push(response.status);
      return response;
    };
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    const pc = new RTCPeerConnection();
    for (const track of media.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
    const client = new window.WHIPClient();
    await client.publish(pc, whipUrl, token);
    await new Promise((resolve, reject) => {
      const check = () => {
        if (pc.connectionState === "connected") resolve();
        else if (pc.connectionState === "failed") reject(new Error("peer connection failed"));
      };
      pc.addEventListener("connectionstatechange", check);
      check();
    });
    window.__client = client;
    return { location: client.resourceURL.href };
  }, { whipUrl, token });
  const patches = await tab.evaluate(() => window.__patches);
  console.log(JSON.stringify({ ...published, origin, patches }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e), origin }));
  await browser.close();
  process.exit(1);
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "stop") {
    await tab.evaluate(() => window.__client.stop());
    console.log(JSON.stringify({ stopped: true }));
    break;
  }
}
await browser.close();
site.close();
process.exit(0);
