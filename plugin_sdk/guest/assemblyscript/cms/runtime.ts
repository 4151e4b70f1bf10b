// The runtime `cms-plugin build` compiles in place of AssemblyScript's stub runtime (asc.mjs):
// the SDK's allocator in cms/alloc.ts, loaded by its library name so that it is the same file
// the library imports.
import "cms/alloc";
