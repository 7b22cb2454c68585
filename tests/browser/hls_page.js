// Page-side helpers of the hls.js scripts (hls_levels.mjs, hls_low_latency.mjs), added to the page by
// `openHlsPage` (chromium.mjs) with hls.js.

// Waits until `check()` holds, polling every 100 ms; throws after `ms`, naming `what` and hls.js' errors so far.
window.until = async (what, check, errors, ms = 15000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} (errors: ${errors.join("; ")})`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

// `promise`, or an error naming `what` and hls.js' errors so far after `ms`: an hls.js event that never comes
// (a manifest not parsed, a level never switched) fails the script instead of holding the test for ever.
window.within = (promise, what, errors, ms = 20000) =>
  Promise.race([
    promise,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${what} within ${ms} ms (errors: ${errors.join("; ")})`)), ms)),
  ]);

// Waits for `src` to be served with `marker` in it: an output's playlist comes with its first segment or part,
// and a multivariant one (marker "#EXT-X-STREAM-INF") replaces the ended playlist a removed output left at the
// same address only once every rendition has a segment.
window.playlistServed = async (src, marker = "#EXTM3U") => {
  for (const end = Date.now() + 20000; ;) {
    const response = await fetch(src);
    if (response.ok && (await response.text()).includes(marker)) return;
    if (Date.now() > end) throw new Error(`no ${src} with ${marker}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

// Switches `hls` to its last level (`levels`: the manifest's, lowest first) and waits until hls.js says so, the
// picture has that height and playback went on half a second.
window.switchToLastLevel = async (hls, video, levels, errors) => {
  const last = levels.length - 1;
  if (last < 1) throw new Error(`one level only: ${JSON.stringify(levels)}`);
  const switched = new Promise((resolve) => hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => d.level === last && resolve()));
  hls.currentLevel = last;
  await within(switched, `switched to level ${last}`, errors);
  const at = video.currentTime;
  await until("the last level's picture, playing on",
              () => video.videoHeight === levels[last].height && video.currentTime > at + 0.5, errors);
};
