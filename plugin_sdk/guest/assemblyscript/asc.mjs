// Runs the pinned AssemblyScript compiler with the SDK's runtime (cms/runtime.ts) in place of
// AssemblyScript's stub runtime, so that asc compiles it as the stub (no shadow stack for a GC).
// Usage: node asc.mjs <assemblyscript/dist/asc.js> <cms/runtime.ts> <asc arguments...>
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [ascPath, runtimePath, ...args] = process.argv.slice(2);
const asc = await import(pathToFileURL(ascPath).href);
asc.libraryFiles["rt/index-stub"] = readFileSync(runtimePath, "utf8");
const { error } = await asc.main([...args, "--runtime", "stub"], {
  stdout: process.stdout,
  stderr: process.stderr,
});
process.exitCode = error ? 1 : 0;
