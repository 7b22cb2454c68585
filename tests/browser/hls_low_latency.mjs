// Plays a low-latency HLS playlist with the server's own hls.js (lowLatencyMode) in headless chromium, and
// reports how far behind the live edge it plays: hls.js' `latency` (the playlist's live edge minus the playhead,
// in seconds) sampled every 250 ms for two seconds once it has played for three, and its `targetLatency`.
// hls.js may play up to 1.5x to catch up with its target latency (maxLiveSyncPlaybackRate; 1, its default, never
// catches up after a slow start). Prints {samples, latency, targetLatency, currentTime, partsLoaded, errors}.
// Usage: node hls_low_latency.mjs SERVER PLAYLIST
import { launchViewer, openHlsPage } from "./chromium.mjs";

const [server, playlist] = process.argv.slice(2);
const browser = await launchViewer();
try {
  const page = await openHlsPage(browser, server);
  const result = await page.evaluate(async (src) => {
    const video = document.querySelector("video");
    const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 });
    const errors = [];
    let partsLoaded = 0;
    hls.on(Hls.Events.ERROR, (_, data) => errors.push(`${data.type} ${data.details} fatal=${data.fatal}`));
    hls.on(Hls.Events.FRAG_LOADED, (_, data) => { if (data.part) partsLoaded += 1; });
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    await playlistServed(src);
    hls.loadSource(src);
    hls.attachMedia(video);
    await until("playing", () => video.currentTime > 0 && video.videoHeight > 0, errors);
    const started = video.currentTime;
    await until("three seconds played", () => video.currentTime > started + 3, errors);
    const samples = [];
    for (let i = 0; i < 8; i++) {
      samples.push(hls.latency);
      await sleep(250);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    return { samples, latency: sorted[Math.floor(sorted.length / 2)], targetLatency: hls.targetLatency,
             currentTime: video.currentTime, partsLoaded, errors };
  }, playlist);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
