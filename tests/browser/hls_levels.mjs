// Plays an HLS multivariant playlist with the server's own hls.js in headless chromium, starting on its first
// level (hls.js orders levels by bandwidth, lowest first), then switches to its last one and waits until the
// picture has that height and playback went on.
// Prints {levels, firstHeight, switchedHeight, currentTime} as JSON. Usage: node hls_levels.mjs SERVER PLAYLIST
import { launchViewer } from "./chromium.mjs";

const [server, playlist] = process.argv.slice(2);
const browser = await launchViewer();
try {
  const page = await browser.newPage();
  // A page of the server's origin (the playlist needs no CORS), with nothing of its own playing.
  await page.goto(`${server}/v1/no-such-page`);
  await page.setContent("<video muted autoplay playsinline></video>");
  await page.addScriptTag({ url: "/assets/hls.min.js" });
  const result = await page.evaluate(async (src) => {
    const video = document.querySelector("video");
    const hls = new Hls({ startLevel: 0, capLevelToPlayerSize: false });
    const errors = [];
    hls.on(Hls.Events.ERROR, (_, data) => errors.push(`${data.type} ${data.details} fatal=${data.fatal}`));
    const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => resolve(data)));
    const until = async (what, check, ms = 15000) => {
      const end = Date.now() + ms;
      while (!check()) {
        if (Date.now() > end) throw new Error(`${what} (errors: ${errors.join("; ")})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Started with the output: its multivariant playlist comes once every rendition has a segment.
    for (const end = Date.now() + 20000; !(await fetch(src)).ok;) {
      if (Date.now() > end) throw new Error(`no ${src}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    hls.loadSource(src);
    hls.attachMedia(video);
    const manifest = await parsed;
    const levels = manifest.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate,
                                                  codecs: `${l.videoCodec},${l.audioCodec}` }));
    await until("playing the first level", () => video.currentTime > 0.5 && video.videoHeight > 0);
    const firstHeight = video.videoHeight;
    const last = levels.length - 1;
    const switched = new Promise((resolve) => hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => d.level === last && resolve()));
    hls.currentLevel = last;
    await switched;
    const at = video.currentTime;
    await until("the last level's picture, playing on",
                () => video.videoHeight === levels[last].height && video.currentTime > at + 0.5);
    return { levels, firstHeight, switchedHeight: video.videoHeight, currentTime: video.currentTime, errors };
  }, playlist);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
