;; Extism echo plugin: the same work as echo.wat through the Extism kernel host ABI
;; (imports from "extism:host/env"): reads its input, outputs {"ok":true,"echo":<input>}.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  ;; The 18-byte prefix, stored below as two u64 words and two bytes.
  (data (i32.const 16) "{\"ok\":true,\"echo\":")
  (func (export "echo") (result i32)
    (local $n i64) (local $out i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $out (call $alloc (i64.add (local.get $n) (i64.const 19))))
    ;; prefix: two u64 words and two bytes
    (call $store_u64 (local.get $out) (i64.load (i32.const 16)))
    (call $store_u64 (i64.add (local.get $out) (i64.const 8)) (i64.load (i32.const 24)))
    (call $store_u8 (i64.add (local.get $out) (i64.const 16)) (i32.load8_u (i32.const 32)))
    (call $store_u8 (i64.add (local.get $out) (i64.const 17)) (i32.load8_u (i32.const 33)))
    ;; input: u64 words, then the tail byte by byte
    (block $done
      (loop $words
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $out) (i64.add (local.get $i) (i64.const 18)))
                         (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $words)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $out) (i64.add (local.get $i) (i64.const 18)))
                        (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $tail)))
    (call $store_u8 (i64.add (local.get $out) (i64.add (local.get $n) (i64.const 18))) (i32.const 125))
    (call $output_set (local.get $out) (i64.add (local.get $n) (i64.const 19)))
    (i32.const 0))
)
