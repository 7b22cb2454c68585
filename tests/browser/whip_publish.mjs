// A web app on its own origin publishing into callcast over WHIP with a third-party client (whip-whep's
// WHIPClient from npm, unmodified): a page served by this script on another port of 127.0.0.1, in Debian's
// headless chromium with a fake camera (a looping Y4M file) and microphone. The client offers before gathering
// and trickles its candidates with PATCH, so this also exercises trickle ICE.
// Prints one JSON line once connected: {"location", "etag", "origin", "patches": [statuses]}. Then reads lines
// on standard input: "restart COLOUR" restarts ICE with the client's restart() (RFC 9725 §4.4: a PATCH with new
// credentials, answered with the server's), waits until the connection runs on a candidate pair of the new
// credentials, then sends a camera of COLOUR (a canvas) instead, and prints {"restarted": {...}} with the ICE
// credentials before and after, as the page and chromium's stats see them; "stop" stops the client (its
// DELETE) and prints {"stopped": true}.
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
    window.__pc = pc;
    return { location: client.resourceURL.href, etag: client.etag };
  }, { whipUrl, token });
  const patches = await tab.evaluate(() => window.__patches);
  console.log(JSON.stringify({ ...published, origin, patches }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e), origin }));
  await browser.close();
  process.exit(1);
}

// The ICE credentials of both descriptions, and those of the candidate pair chromium's transport has selected.
async function iceInUse() {
  return tab.evaluate(async () => {
    const pc = window.__pc;
    const ufrag = (sdp) => sdp.match(/a=ice-ufrag:(.*)\r\n/)[1];
    const stats = [...(await pc.getStats()).values()];
    const transport = stats.find((s) => s.type === "transport");
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
    const remote = stats.find((s) => s.id === pair?.remoteCandidateId);
    return {
      local: ufrag(pc.localDescription.sdp),
      remote: ufrag(pc.remoteDescription.sdp),
      selectedLocal: transport?.iceLocalUsernameFragment ?? null,
      selectedRemote: remote?.usernameFragment ?? null,
      pairChanges: transport?.selectedCandidatePairChanges ?? null,
      connection: pc.connectionState,
    };
  });
}

async function restart(colour) {
  const before = await iceInUse();
  await tab.evaluate(() => window.__client.restart());
  const deadline = Date.now() + 20000;
  let after = await iceInUse();
  while (!(after.selectedLocal === after.local && after.selectedRemote === after.remote
           && after.remote !== before.remote && after.connection === "connected")) {
    if (Date.now() > deadline) return { before, after, error: "no pair of the new credentials selected" };
    await new Promise((resolve) => setTimeout(resolve, 100));
    after = await iceInUse();
  }
  // From now on frames of another colour: the broadcast shows them only if media crosses the restarted path.
  await tab.evaluate(async (colour) => {
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 360;
    const paint = canvas.getContext("2d");
    setInterval(() => { paint.fillStyle = colour; paint.fillRect(0, 0, 640, 360); }, 33);
    const track = canvas.captureStream(30).getVideoTracks()[0];
    const sender = window.__pc.getSenders().find((s) => s.track?.kind === "video");
    await sender.replaceTrack(track);
  }, colour);
  const patches = await tab.evaluate(() => window.__patches);
  return { before, after, etag: await tab.evaluate(() => window.__client.etag), patches };
}

for await (const line of createInterface({ input: process.stdin })) {
  const [command, argument] = line.trim().split(/\s+/);
  if (command === "restart") {
    try {
      console.log(JSON.stringify({ restarted: await restart(argument) }));
    } catch (e) {
      console.log(JSON.stringify({ restarted: { error: String(e) } }));
    }
  }
  if (command === "stop") {
    await tab.evaluate(() => window.__client.stop());
    console.log(JSON.stringify({ stopped: true }));
    break;
  }
}
await browser.close();
site.close();
process.exit(0);
