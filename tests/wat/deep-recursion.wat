;; Recursion without end, with no frame in linear memory: every frame is on
;; the native stack the host gives wasm (run with a large --stack-kb), so
;; what overflows is that stack, never a shadow stack in memory.
;; @DECLARATIONS@
(func $down (param i32) (result i32)
  (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (local.get 0)))
;; @UPGRADE@
(drop (call $down (i32.const 0)))
