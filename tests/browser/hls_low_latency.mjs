// Plays a low-latency HLS rendition ladder (a multivariant playlist over low-latency media playlists) with the
// server's own hls.js (lowLatencyMode) in headless chromium, held on its first level (hls.js orders levels by
// bandwidth, lowest first), and reports how far behind the live edge it plays: hls.js' `latency` (the playlist's
// live edge minus the playhead, in seconds) sampled every 250 ms for two seconds once it has played for three, and
// its `targetLatency`. Then it switches to the last level and waits until the picture has that height and
// playback went on, still in low-latency mode.
// hls.js may play up to 1.5x to catch up with its target latency (maxLiveSyncPlaybackRate; 1, its default, never
// catches up after a slow start).
// Prints {levels, firstHeight, switchedHeight, samples, latency, targetLatency, currentTime, partsLoaded,
// partsAfterSwitch, lowLatencyMode, errors}.
// Usage: node hls_low_latency.mjs SERVER MULTIVARIANT_PLAYLIST
import { launchViewer, openHlsPage } from "./chromium.mjs";

const [server, playlist] = process.argv.slice(2);
const browser = await launchViewer();
try {
  const page = await openHlsPage(browser, server);
  const result = await page.evaluate(async (src) => {
    const video = document.querySelector("video");
    const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, startLevel: 0,
                          capLevelToPlayerSize: false });
    const errors = [];
    let partsLoaded = 0;
    const partsByLevel = {};
    hls.on(Hls.Events.ERROR, (_, data) => errors.push(`${data.type} ${data.details} fatal=${data.fatal}`));
    hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
      if (!data.part) return;
      partsLoaded += 1;
      partsByLevel[data.frag.level] = (partsByLevel[data.frag.level] || 0) + 1;
    });
    // Held on the first level (a manual level: hls.js' bandwidth estimate would otherwise move it up on its own
    // before the first height is read), until the switch asked for below.
    const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      hls.loadLevel = 0;
      resolve(data);
    }));
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    // The multivariant playlist comes once every rendition lists a part.
    await playlistServed(src, "#EXT-X-STREAM-INF");
    hls.loadSource(src);
    hls.attachMedia(video);
    const manifest = await within(parsed, "the multivariant playlist parsed", errors);
    const levels = manifest.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate }));
    await until("playing", () => video.currentTime > 0 && video.videoHeight > 0, errors);
    const firstHeight = video.videoHeight;
    const started = video.currentTime;
    await until("three seconds played", () => video.currentTime > started + 3, errors);
    const samples = [];
    for (let i = 0; i < 8; i++) {
      samples.push(hls.latency);
      await sleep(250);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const latency = sorted[Math.floor(sorted.length / 2)];
    const targetLatency = hls.targetLatency;
    await switchToLastLevel(hls, video, levels, errors);
    return { levels, firstHeight, switchedHeight: video.videoHeight, samples, latency, targetLatency,
             currentTime: video.currentTime, partsLoaded, partsAfterSwitch: partsByLevel[levels.length - 1] || 0,
             lowLatencyMode: hls.lowLatencyMode, errors };
  }, playlist);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
