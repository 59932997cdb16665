;; A table grown to ten million function references (160 MB of host
;; memory as the host counts it) under a 64 MiB limit.
;; @DECLARATIONS@
(table $t 0 funcref)
;; @UPGRADE@
(if (i32.eq (table.grow $t (ref.null func) (i32.const 10000000)) (i32.const -1)) (then unreachable))
