// Debian's headless chromium as every browser test starts it: quiet (no background traffic), and either with
// autoplay for watching, or with a fake camera (a looping Y4M file) and microphone for publishing over WebRTC.
import { chromium } from "playwright-core";

const QUIET = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"];

// A browser that plays media without a user gesture.
export function launchViewer() {
  return chromium.launch({ executablePath: "/usr/bin/chromium",
                           args: [...QUIET, "--autoplay-policy=no-user-gesture-required"] });
}

// A browser whose camera is `camera` (Y4M) and whose microphone is a fake tone.
export function launchPublisher(camera) {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [...QUIET, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
           `--use-file-for-fake-video-capture=${camera}`,
           // Tests run in a network namespace with only loopback: let WebRTC use it, with real addresses.
           "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
}

// A browser that watches over WebRTC (WHEP) and plays without a user gesture: no camera, WebRTC on loopback.
export function launchWebRtcViewer() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [...QUIET, "--autoplay-policy=no-user-gesture-required",
           "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
}

// A page of `server`'s origin (playlists need no CORS) with nothing of its own playing: a muted autoplaying
// <video>, the server's own hls.js and the page-side helpers of hls_page.js.
export async function openHlsPage(browser, server) {
  const page = await browser.newPage();
  await page.goto(`${server}/v1/no-such-page`);
  await page.setContent("<video muted autoplay playsinline></video>");
  await page.addScriptTag({ url: "/assets/hls.min.js" });
  await page.addScriptTag({ path: new URL("./hls_page.js", import.meta.url).pathname });
  return page;
}
