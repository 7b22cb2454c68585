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
