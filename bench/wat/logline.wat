;; Stand-in plugin (ABI v1) that uses a host function: writes one line through cms.log and
;; answers {"ok":true}. Needs the "log" grant. Bench material only (bench/plugin_call.py).
(module
  (import "cms" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"ok\":true}")
  (data (i32.const 32) "bench plugin called")
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cms_abi_version") (result i32) (i32.const 1))
  (func (export "cms_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n)))
    (local.get $p))
  (func (export "cms_handle") (param $p i32) (param $l i32) (result i64)
    (call $log (i32.const 0) (i32.const 32) (i32.const 19))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 11)))
)
