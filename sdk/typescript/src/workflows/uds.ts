import http from "node:http";

import { VERSION } from "../version.js";

// as Render's SDKs: 25 tries, 0.25 s doubling to 16 s, minutes in all (a control plane restarting)
const TRIES = 25;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 16_000;
const TIMEOUT_MS = 15_000;

/** The platform answered 4xx: trying again cannot help. */
export class PlatformRefused extends Error {}

function userAgent(): string {
  return `conveyor-sdk-typescript/${VERSION} (node/${process.versions.node})`;
}

function once(socketPath: string, path: string, method: string, body: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        socketPath,
        path,
        method,
        timeout: TIMEOUT_MS,
        headers: {
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
          "User-Agent": userAgent(),
          Connection: "close",
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          const status = response.statusCode ?? 0;
          if (status >= 500 || status === 429) {
            reject(new Error(`HTTP ${status}: ${text}`));
          } else if (status >= 400) {
            reject(new PlatformRefused(`HTTP ${status}: ${text}`));
          } else {
            try {
              resolve(text ? JSON.parse(text) : {});
            } catch (error) {
              reject(new PlatformRefused(`the platform's answer is not JSON: ${String(error)}`));
            }
          }
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    request.on("error", reject);
    request.end(body);
  });
}

/** One request to the platform on the instance's socket; transport errors and 5xx are retried. */
export async function call(
  socketPath: string,
  path: string,
  method: "GET" | "POST",
  payload?: unknown,
): Promise<unknown> {
  const body = payload === undefined ? "" : JSON.stringify(payload);
  let delay = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(socketPath, path, method, body);
    } catch (error) {
      if (error instanceof PlatformRefused || attempt >= TRIES) throw error;
      await new Promise((done) => setTimeout(done, delay));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}
