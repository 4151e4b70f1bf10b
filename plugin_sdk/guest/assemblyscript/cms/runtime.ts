// The runtime `cms-plugin build` passes to asc (--runtime): the SDK's allocator in cms/alloc.ts,
// loaded by its library name so that it is the same file the library imports.
import "cms/alloc";
