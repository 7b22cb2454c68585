// A real browser participant: Debian's headless chromium with a fake camera (a looping Y4M file) and fake
// microphone publishes into a Janus VideoRoom through Janus' HTTP API, from a page on Janus' own origin.
// Prints "published" once Janus answered, then keeps publishing until killed.
// Usage: node janus_publish.mjs JANUS_URL ROOM PIN DISPLAY CAMERA.y4m [simulcast]
import { launchPublisher } from "./chromium.mjs";

const [janusUrl, room, pin, display, camera, mode] = process.argv.slice(2);
const simulcast = mode === "simulcast";
const browser = await launchPublisher(camera);
const stop = async () => { await browser.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const page = await browser.newPage();
page.on("console", (msg) => console.error(`page: ${msg.text()}`));
await page.goto(`${janusUrl}/info`);
await page.evaluate(async ({ janusUrl, room, pin, display, simulcast }) => {
  const tx = () => Math.random().toString(36).slice(2);
  const post = async (path, body) => {
    const r = await fetch(janusUrl + path, { method: "POST", body: JSON.stringify({ ...body, transaction: tx() }) });
    const json = await r.json();
    if (json.janus === "error") throw new Error(JSON.stringify(json.error));
    return json;
  };
  const session = (await post("", { janus: "create" })).data.id;
  const handle = (await post(`/${session}`, { janus: "attach", plugin: "janus.plugin.videoroom" })).data.id;
  const nextEvent = async (pick) => {
    for (;;) {
      const events = await (await fetch(`${janusUrl}/${session}?maxev=5`)).json();
      for (const e of [].concat(events)) {
        const data = e.plugindata && e.plugindata.data;
        if (data && data.error) throw new Error(data.error);
        const found = pick(e);
        if (found) return found;
      }
    }
  };
  await post(`/${session}/${handle}`, { janus: "message",
    body: { request: "join", ptype: "publisher", room: Number(room), pin, display } });
  await nextEvent((e) => e.plugindata && e.plugindata.data.videoroom === "joined");

  const pc = new RTCPeerConnection({ iceServers: [] });
  const size = simulcast ? { width: 1280, height: 720 } : { width: 640, height: 360 };
  const media = await navigator.mediaDevices.getUserMedia({ video: size, audio: true });
  for (const track of media.getTracks()) {
    if (track.kind === "video" && simulcast) {
      // Three layers, as browsers send them to SFUs: quarter, half and full size.
      const sender = pc.addTransceiver(track, { direction: "sendonly", streams: [media], sendEncodings: [
        { rid: "q", scaleResolutionDownBy: 4 }, { rid: "h", scaleResolutionDownBy: 2 }, { rid: "f" }] }).sender;
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      await sender.setParameters(params);
    } else {
      pc.addTrack(track, media);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
  });
  await post(`/${session}/${handle}`, { janus: "message",
    body: { request: "configure", audio: true, video: true }, jsep: pc.localDescription.toJSON() });
  const answer = await nextEvent((e) => e.jsep);
  await pc.setRemoteDescription(answer);
  setInterval(() => post(`/${session}`, { janus: "keepalive" }), 4000);
  window.__pc = pc;
}, { janusUrl, room, pin, display, simulcast });
console.log("published");
if (process.env.PUBLISH_STATS) {
  setInterval(async () => {
    const layers = await page.evaluate(async () => {
      const out = [];
      (await window.__pc.getStats()).forEach((r) => {
        if (r.type === "outbound-rtp" && r.kind === "video") {
          out.push(`${r.rid || "-"}:${r.frameWidth || 0}x${r.frameHeight || 0}@${r.framesPerSecond || 0} ${r.qualityLimitationReason}`);
        }
      });
      return out.join(" ");
    });
    console.error(`stats: ${layers}`);
  }, 3000);
}
// Keep the page (and its PeerConnection) alive until the test kills us.
await new Promise(() => {});
