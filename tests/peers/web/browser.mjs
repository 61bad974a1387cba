#!/usr/bin/env node
// Opens the demo page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core: no browser is downloaded), calls SimpleMethod and ServerStreamingMethod
// with each encoding the page offers (Connect JSON, then binary) by clicking its buttons,
// checks the replies the page shows against demo-server's; then, inside the page, calls
// the same server over gRPC-Web text and binary with the official grpc-web runtime
// (gen/grpc_web_check.js); and saves a screenshot.
//
//   node browser.mjs --url http://127.0.0.1:PORT/ --screenshot PATH
//                    [--server-name Rust] [--server-id 1] [--chromium /usr/bin/chromium]
//                    [--no-grpc-web-text]
//
// --no-grpc-web-text leaves out the gRPC-Web text calls, for servers without it (connect-node:
// server.mjs answers them 415).
// The URL may carry ?server=http://OTHER to make the page call another origin (CORS).
// Prints one JSON line per check ({"check", "result": "pass"|"fail", ...}) and exits 0 when
// all passed, 1 when one failed, 2 on bad arguments, 3 when Chromium is missing.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

import { ERROR_MESSAGE, STREAM_REPLIES, texts } from "./demo_service.mjs";

const PAGE_TIMEOUT_MS = 20_000;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: "string" },
      screenshot: { type: "string" },
      "server-name": { type: "string", default: "Rust" },
      "server-id": { type: "string", default: "1" },
      chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
      "no-grpc-web-text": { type: "boolean", default: false },
    },
    strict: true,
  }));
} catch (e) {
  console.error(`browser.mjs: ${e.message}`);
  process.exit(2);
}
if (args.url === undefined || args.screenshot === undefined) {
  console.error("usage: node browser.mjs --url http://127.0.0.1:PORT/ --screenshot PATH [--server-name Rust] [--server-id 1] [--chromium PATH] [--no-grpc-web-text]");
  process.exit(2);
}
if (!fs.existsSync(args.chromium)) {
  console.error(
    `browser.mjs: Chromium is missing (no ${args.chromium}): install it with \`apt-get install -y chromium\` (Debian), or name another with --chromium PATH`,
  );
  process.exit(3);
}

const say = texts(args["server-name"]);
const serverId = args["server-id"];
let failed = 0;

function report(check, ok, seen) {
  if (!ok) failed++;
  console.log(JSON.stringify({ check, result: ok ? "pass" : "fail", ...seen }));
}

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  timeout: PAGE_TIMEOUT_MS,
});
const problems = []; // console errors, page errors, failed requests: shown on failure
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 820 } });
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));

  const response = await page.goto(args.url);
  const loaded = response !== null && response.ok();
  report("load", loaded, { url: args.url, status: response?.status() ?? null });
  if (!loaded) throw new Error(`the page did not load`);
  await page.waitForFunction(() => document.getElementById("server")?.textContent !== "?");
  const server = await page.textContent("#server");

  /** Clicks `#NAME-run` and waits for the section to leave the running state. */
  async function call(name) {
    await page.click(`#${name}-run`);
    await page.waitForFunction(
      (n) => !["running", "idle"].includes(document.getElementById(n).dataset.state),
      name,
    );
    return {
      state: await page.getAttribute(`#${name}`, "data-state"),
      status: await page.textContent(`#${name}-status`),
    };
  }

  for (const format of ["json", "binary"]) {
    await page.selectOption("#format", format);

    const simple = await call("simple");
    const reply = await page.evaluate(() => {
      const el = document.getElementById("simple-result");
      return { serverId: el.dataset.serverId, responseData: el.dataset.responseData };
    });
    report(`simple_${format}`, simple.state === "ok" && reply.serverId === serverId && reply.responseData === say.simple, {
      server,
      ...simple,
      reply,
      expected: { serverId, responseData: say.simple },
    });

    const stream = await call("stream");
    const replies = await page.$$eval("#stream-results li", (items) =>
      items.map((li) => ({ serverId: li.dataset.serverId, responseData: li.dataset.responseData })),
    );
    const expected = Array.from({ length: STREAM_REPLIES }, (_, i) => ({ serverId, responseData: say.serverStreaming(i) }));
    report(`server_streaming_${format}`, stream.state === "ok" && JSON.stringify(replies) === JSON.stringify(expected), {
      server,
      ...stream,
      replies,
      ...(JSON.stringify(replies) === JSON.stringify(expected) ? {} : { expected }),
    });
  }

  // gRPC-Web, text and binary, on the official runtime (grpc-web), from inside the page
  // and against the same server (gen/grpc_web_check.js, built by demo/web/build.sh).
  await page.addScriptTag({ path: fileURLToPath(new URL("./gen/grpc_web_check.js", import.meta.url)) });
  const expectedGrpcWeb = {
    simple: { serverId, responseData: say.simple },
    serverStreaming: Array.from({ length: STREAM_REPLIES }, (_, i) => ({ serverId, responseData: say.serverStreaming(i) })),
    errorMessage: ERROR_MESSAGE,
  };
  const formats = args["no-grpc-web-text"] ? ["binary"] : ["text", "binary"];
  for (const { check, ok, ...seen } of await page.evaluate(
    ([base, expected, formats]) => window.grpcWebCheck(base, expected, formats),
    [server, expectedGrpcWeb, formats],
  )) {
    report(check, ok, seen);
  }

  fs.mkdirSync(path.dirname(path.resolve(args.screenshot)), { recursive: true });
  await page.screenshot({ path: args.screenshot, fullPage: true });
  report("screenshot", true, { path: args.screenshot });
} catch (e) {
  report("run", false, { error: String(e?.message ?? e) });
} finally {
  await browser.close();
}
if (failed > 0 && problems.length > 0) {
  console.error(`browser.mjs: what the page reported:\n  ${problems.join("\n  ")}`);
}
process.exit(failed === 0 ? 0 : 1);
