;; Three more memories, each grown to 40 MiB: every one alone is under a
;; 64 MiB limit, together they are far over it.
;; @DECLARATIONS@
(memory $m1 0)
(memory $m2 0)
(memory $m3 0)
;; @UPGRADE@
(if (i32.eq (memory.grow $m1 (i32.const 640)) (i32.const -1)) (then unreachable))
(if (i32.eq (memory.grow $m2 (i32.const 640)) (i32.const -1)) (then unreachable))
(if (i32.eq (memory.grow $m3 (i32.const 640)) (i32.const -1)) (then unreachable))
