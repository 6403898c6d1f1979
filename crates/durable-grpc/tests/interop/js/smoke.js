// Chaining with the JavaScript Durable Task SDK against a sidecar at $DURABLETASK_HOST.
// Prints one line per scenario and `N passed, M failed`, like the Python runner.
const grpc = require("@grpc/grpc-js");
const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, NoOpLogger } = require("@microsoft/durabletask-js");

const host = process.env.DURABLETASK_HOST || "localhost:4001";
const key = process.env.DURABLE_API_KEY;
// The API key, when the server wants one: metadata `authorization: Bearer <key>` on every call.
const metadataGenerator = key
  ? async () => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${key}`);
      return metadata;
    }
  : undefined;

const greet = async (_ctx, name) => `Hello, ${name}!`;

const jsChain = async function* (ctx, names) {
  const out = [];
  for (const name of names) {
    out.push(yield ctx.callActivity(greet, name));
  }
  return out;
};

async function main() {
  const logger = new NoOpLogger();
  const worker = new TaskHubGrpcWorker({ hostAddress: host, metadataGenerator, logger });
  worker.addOrchestrator(jsChain);
  worker.addActivity(greet);
  await worker.start();
  const client = new TaskHubGrpcClient({ hostAddress: host, metadataGenerator, logger });
  let passed = 0, failed = 0;
  try {
    const id = await client.scheduleNewOrchestration(jsChain, ["Tokyo", "Seattle", "London"]);
    const state = await client.waitForOrchestrationCompletion(id, true, 60);
    const output = JSON.parse(state.serializedOutput);
    const expected = ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"];
    if (state.runtimeStatus !== OrchestrationStatus.COMPLETED || JSON.stringify(output) !== JSON.stringify(expected)) {
      throw new Error(`unexpected result: ${state.runtimeStatus} ${state.serializedOutput}`);
    }
    passed++;
    console.log("PASS js_chaining");
  } catch (e) {
    failed++;
    console.log(`FAIL js_chaining: ${e.stack || e}`);
  } finally {
    await worker.stop();
    await client.stop();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed || !passed ? 1 : 0);
}

main().catch((e) => { console.log(`FAIL js_smoke: ${e.stack || e}`); console.log("0 passed, 1 failed"); process.exit(1); });
