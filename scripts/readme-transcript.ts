// The README's `plan` and `status` transcript, produced by running them: the
// demo stack converges on the local control plane, someone scales the querier
// by hand and starts a second compactor, `lokistack plan demo` shows the
// drift, the operator's next pass repairs it, and `lokistack status demo`
// shows the stack catching up. The clock and the ids are fixed, so the text
// is the same on every run; test/readme.test.ts fails when the README's copy
// differs. `npm run readme:transcript` writes it into the README.
import { readFileSync, writeFileSync } from "node:fs";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { ECSClient, RunTaskCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { DiscoveryGateway } from "../src/aws/discovery-gateway.ts";
import { EcsGateway } from "../src/aws/ecs-gateway.ts";
import { SsmGateway } from "../src/aws/ssm-gateway.ts";
import { WriteLimiter } from "../src/aws/write-limiter.ts";
import { makeClients } from "../src/aws/clients.ts";
import { Reconciler } from "../src/controllers/reconciler.ts";
import { startLocalControlPlane } from "../src/local/control-plane.ts";
import { LokiGateway } from "../src/loki/gateway.ts";
import { planCommand, statusCommand } from "../src/runtime/commands.ts";
import { DEMO_SPEC } from "../src/runtime/demo.ts";
import { seedStack } from "../src/runtime/local.ts";
import { createLogger } from "../src/runtime/logger.ts";

export const README = fileURLToPath(new URL("../README.md", import.meta.url));
const BEGIN = "<!-- transcript: written by `npm run readme:transcript` (scripts/readme-transcript.ts); test/readme.test.ts fails when it differs -->";
const END = "<!-- /transcript -->";

export async function demoTranscript(): Promise<string> {
  let seconds = Date.parse("2026-12-01T12:00:00Z") / 1000;
  const now = () => new Date(seconds * 1000);
  const cp = await startLocalControlPlane({ port: 0, paused: true, seed: 7, now: () => seconds });
  try {
    await seedStack(cp, DEMO_SPEC);
    const clients = makeClients({ endpoint: cp.endpoint, region: cp.region });
    const unlimited = { rate: 1e6, burst: 1e6 };
    const operator = new Reconciler({
      prefix: "/lokistack",
      ecs: new EcsGateway(clients.ecs),
      ssm: new SsmGateway(clients.ssm),
      discovery: new DiscoveryGateway(clients.discovery),
      limiter: new WriteLimiter({ service: unlimited, taskDefinition: unlimited, task: unlimited, tag: unlimited, parameter: unlimited, discovery: unlimited }),
      logger: createLogger({ pretty: false, destination: new Writable({ write: (_c, _e, done) => done() }), level: "silent" }),
      now,
      replica: "lokistack-operator-7f9c",
      resyncSeconds: 30,
      loki: new LokiGateway({ proxy: cp.endpoint }),
    });
    const pass = async () => {
      const [r] = await operator.pass({ mode: "apply" });
      cp.step(4);
      seconds += 30;
      return r!;
    };
    for (let i = 0; ; i++) {
      const r = await pass();
      if (r.outcome.kind === "done" && r.status?.conditions.some((c) => c.type === "Ready" && c.status === "True")) break;
      if (i > 60) throw new Error("the demo stack did not converge");
    }
    // The drift: a querier scaled by hand, and a second compactor started for debugging.
    const ecs = new ECSClient(cp.clientConfig);
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    const compactor = cp.ecs.state.services["logging/demo-compactor"]!;
    await ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: compactor.taskDefinition, launchType: "FARGATE", networkConfiguration: compactor.networkConfiguration as never, startedBy: "someone-debugging" }));
    cp.step(3);
    seconds += 20;

    let text = "";
    const print = (t: string) => (text += t);
    const aws = { endpoint: cp.endpoint, region: cp.region, lokiProxy: cp.endpoint };
    print("$ lokistack plan demo\n");
    const planned = await planCommand({ ...aws, name: "demo" }, print, print);
    print(`$ echo $?\n${planned}\n`);
    // The operator's next resync repairs it; status shows it catching up.
    await pass();
    print("\n$ lokistack status demo\n");
    await statusCommand({ ...aws, name: "demo", now }, print, print);
    return text;
  } finally {
    await cp.stop();
  }
}

/** The README with `transcript` in place of the block between the markers. */
export function withTranscript(readme: string, transcript: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no transcript block (${BEGIN} … ${END})`);
  return `${readme.slice(0, start)}${BEGIN}\n\n\`\`\`console\n${transcript}\`\`\`\n\n${readme.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  writeFileSync(README, withTranscript(readFileSync(README, "utf8"), await demoTranscript()));
  console.log("README.md: transcript written");
}
