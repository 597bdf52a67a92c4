// quirrel-main.js: Quirrel's production entry (quirrel/dist/cjs/src/api/main.js
// in version 1.14.1), started the same way: environment PORT, HOST, REDIS_URL,
// PASSPHRASES, DISABLE_TELEMETRY, the same runQuirrel() options, with one
// change for a fair comparison: the stock server rate-limits each client to
// 10,000 requests a minute, so the limit is lifted through runQuirrel()'s
// rateLimiter option. Prints "port=N" once listening (PORT=0 lets the OS
// choose) and stops on SIGTERM like the original.
"use strict";
const path = require("node:path");
const root = path.join(__dirname, "node_modules", "quirrel", "dist", "cjs", "src");
const { runQuirrel } = require(path.join(root, "api"));
const { createRedisFactory } = require(path.join(root, "api", "shared", "create-redis"));

async function main() {
  const { PORT = 9181, HOST, REDIS_URL, PASSPHRASES, DISABLE_TELEMETRY } = process.env;
  const quirrel = await runQuirrel({
    port: +PORT,
    host: HOST,
    redisFactory: createRedisFactory(REDIS_URL, {}),
    passphrases: PASSPHRASES ? PASSPHRASES.split(":") : undefined,
    runningInDocker: false,
    disableTelemetry: Boolean(DISABLE_TELEMETRY),
    logger: "structured",
    enableSSRFPrevention: false,
    rateLimiter: { max: 1e9 }, // the one change: the stock limit is 10,000 a minute
  });
  process.stdout.write(`port=${quirrel.httpServer.address().port}\n`);
  const stop = async () => {
    await quirrel.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
