// A web app on its own origin watching a broadcast over WHEP with a third-party client (whip-whep's WHEPClient
// from npm, unmodified): a page served by this script on another port of 127.0.0.1, in Debian's headless
// chromium. Prints one JSON line once a frame was decoded: {"location", "origin", "first_frame_ms" (from the
// offer's POST to the first decoded frame), "pixel" (RGB at the centre of that frame, drawn to a canvas),
// "video_codec", "audio": {"state", "packets", "samples"} (the audio track and what its decoder produced),
// "trickled" (the status of each trickle PATCH the client sent)};
// then, on the line "frames" on standard input, prints {"frames_decoded"} (the video decoder's count so far), and on
// the line "stop", stops the client (its DELETE) and prints {"stopped": true}.
// With --sound (a broadcast without a picture): it offers video and audio as any player does, waits for 1 s of
// decoded sound instead of a frame, records 2 s of what it hears (MediaRecorder, WebM/Opus) and prints
// {"location", "origin", "audio", "video_direction" (the video transceiver's negotiated direction), "recording"
// (base64)} before reading standard input as above.
// Usage: node whep_view.mjs [--sound] WHEP_URL [TOKEN]
import { launchWebRtcViewer } from "./chromium.mjs";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const sound = args[0] === "--sound";
const [whepUrl, token] = sound ? args.slice(1) : args;
const client = readFileSync(fileURLToPath(new URL("./node_modules/whip-whep/whep.js", import.meta.url)));
// The page notes the status of every trickle PATCH the client sends (`window.__patches`).
const page = `<!doctype html><video id="v" muted autoplay playsinline></video><script>
window.__patches = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await realFetch(...args);
  if (args[1]?.method === "PATCH") window.__patches.push(response.status);
  return response;
};
</script><script type="module">
import { WHEPClient } from "/whep.js";
window.WHEPClient = WHEPClient;
</script>`;
const site = createServer((req, res) => {
  if (req.url === "/whep.js") {
    res.writeHead(200, { "content-type": "text/javascript" }).end(client);
  } else {
    res.writeHead(200, { "content-type": "text/html" }).end(page);
  }
});
await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${site.address().port}`;

const browser = await launchWebRtcViewer();
const tab = await browser.newPage();
tab.on("console", (msg) => console.error(`page: ${msg.text()}`));
await tab.goto(origin);
await tab.waitForFunction(() => window.WHEPClient !== undefined);
// The sound of a broadcast without a picture: 1 s decoded, then 2 s recorded as the page hears it.
async function listen({ whepUrl, token }) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const tracks = new Promise((resolve) => { pc.ontrack = (event) => event.track.kind === "audio" && resolve(event.track); });
  const client = new window.WHEPClient();
  await client.view(pc, whepUrl, token || undefined);
  window.__client = client;
  window.__pc = pc;
  const track = await tracks;
  const stream = new MediaStream([track]);
  // Chromium plays a remote track's sound only while an element renders it.
  const element = new Audio();
  element.muted = true;
  element.srcObject = stream;
  await element.play();
  const inbound = async () => [...(await pc.getStats()).values()].find((r) => r.type === "inbound-rtp" && r.kind === "audio");
  const deadline = performance.now() + 20000;
  while (((await inbound())?.totalSamplesReceived ?? 0) < 48000) {
    if (performance.now() > deadline) throw new Error(`no sound (connection ${pc.connectionState})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const recorder = new MediaRecorder(stream, { mimeType: "audio/webm;codecs=opus" });
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const stats = await pc.getStats();
  const audio = await inbound();
  const video = pc.getTransceivers().find((t) => t.receiver.track.kind === "video");
  return { location: client.resourceURL.href, recording: btoa(binary), video_direction: video?.currentDirection,
           audio: { packets: audio.packetsReceived, samples: audio.totalSamplesReceived,
                    codec: stats.get(audio.codecId)?.mimeType } };
}

try {
  const watched = sound ? await tab.evaluate(listen, { whepUrl, token }) : await tab.evaluate(async ({ whepUrl, token }) => {
    const video = document.getElementById("v");
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      video.srcObject = stream;
    };
    const client = new window.WHEPClient();
    const started = performance.now();
    await client.view(pc, whepUrl, token || undefined);
    window.__client = client;
    window.__pc = pc;
    // The first decoded frame, then a frame 1 s later (the picture, not a first frame still settling).
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame (connection ${pc.connectionState})`)), 20000);
      video.requestVideoFrameCallback(() => { clearTimeout(timer); resolve(); });
    });
    const firstFrameMs = Math.round(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(video, 0, 0);
    const pixel = Array.from(ctx.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data.slice(0, 3));
    let audio = {}, videoCodec = null;
    const stats = await pc.getStats();
    for (const report of stats.values()) {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        audio = { packets: report.packetsReceived, samples: report.totalSamplesReceived,
                  codec: stats.get(report.codecId)?.mimeType };
      }
      if (report.type === "inbound-rtp" && report.kind === "video") {
        videoCodec = stats.get(report.codecId)?.mimeType;
      }
    }
    audio.state = stream.getAudioTracks()[0]?.readyState;
    return { location: client.resourceURL.href, first_frame_ms: firstFrameMs, pixel, audio,
             video_codec: videoCodec, size: [video.videoWidth, video.videoHeight], trickled: window.__patches };
  }, { whepUrl, token });
  console.log(JSON.stringify({ ...watched, origin }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e), origin }));
  await browser.close();
  process.exit(1);
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "frames") {
    const frames = await tab.evaluate(async () => {
      const stats = await window.__pc.getStats();
      const video = [...stats.values()].find((r) => r.type === "inbound-rtp" && r.kind === "video");
      return video?.framesDecoded ?? null;
    });
    console.log(JSON.stringify({ frames_decoded: frames }));
  }
  if (line.trim() === "stop") {
    await tab.evaluate(() => window.__client.stop());
    console.log(JSON.stringify({ stopped: true }));
    break;
  }
}
await browser.close();
site.close();
process.exit(0);
