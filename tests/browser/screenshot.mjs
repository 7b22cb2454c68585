// Opens a page in Debian's headless chromium, waits until its <video> has played `seconds` of media, prints
// the video's currentTime and saves a screenshot. Usage: node screenshot.mjs URL OUT.png [seconds]
import { launchViewer } from "./chromium.mjs";

const [url, out, seconds = "3"] = process.argv.slice(2);
const browser = await launchViewer();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(url);
  await page.waitForFunction((s) => {
    const v = document.querySelector("video");
    return v && v.currentTime > Number(s);
  }, seconds, { timeout: 30000 });
  const time = await page.evaluate(() => document.querySelector("video").currentTime);
  await page.screenshot({ path: out });
  console.log(JSON.stringify({ currentTime: time }));
} finally {
  await browser.close();
}
