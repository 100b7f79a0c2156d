// npm run bench: every benchmark in bench/, one after the other.
// (The SDK's notice that releases after January 2027 need Node 22 is noise in the figures.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
await import("./control-plane.ts");
console.log();
await import("./operator.ts");
console.log();
await import("./operator-rss.ts");
console.log();
await import("./safety.ts");
console.log();
await import("./real-tasks.ts");
