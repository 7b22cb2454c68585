// Plays an HLS multivariant playlist with the server's own hls.js in headless chromium, starting on its first
// level (hls.js orders levels by bandwidth, lowest first), held there, then switches to its last one and waits until the
// picture has that height and playback went on.
// Prints {levels, firstHeight, switchedHeight, currentTime} as JSON. Usage: node hls_levels.mjs SERVER PLAYLIST
import { launchViewer, openHlsPage } from "./chromium.mjs";

const [server, playlist] = process.argv.slice(2);
const browser = await launchViewer();
try {
  const page = await openHlsPage(browser, server);
  const result = await page.evaluate(async (src) => {
    const video = document.querySelector("video");
    const hls = new Hls({ startLevel: 0, capLevelToPlayerSize: false });
    const errors = [];
    hls.on(Hls.Events.ERROR, (_, data) => errors.push(`${data.type} ${data.details} fatal=${data.fatal}`));
    // Held on the first level (a manual level: hls.js' bandwidth estimate would otherwise move it up on its own
    // before the first height is read), until the switch asked for below.
    const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
      hls.loadLevel = 0;
      resolve(data);
    }));
    // Started with the output: its multivariant playlist comes once every rendition has a segment; until then
    // the address serves the ended media playlist of the HLS output removed before.
    await playlistServed(src, "#EXT-X-STREAM-INF");
    hls.loadSource(src);
    hls.attachMedia(video);
    const manifest = await within(parsed, "the multivariant playlist parsed", errors);
    const levels = manifest.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate,
                                                  codecs: `${l.videoCodec},${l.audioCodec}` }));
    await until("playing the first level", () => video.currentTime > 0.5 && video.videoHeight > 0, errors);
    const firstHeight = video.videoHeight;
    await switchToLastLevel(hls, video, levels, errors);
    return { levels, firstHeight, switchedHeight: video.videoHeight, currentTime: video.currentTime, errors };
  }, playlist);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
