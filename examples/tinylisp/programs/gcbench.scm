;; gcbench.scm -- GCBench (John Ellis, Pete Kovac, Hans Boehm), in tinylisp.
;;
;; The classic collector benchmark, scaled to an interpreter: it keeps a
;; long-lived binary tree and a long-lived vector of flonums, and meanwhile
;; builds and drops thousands of short-lived trees, top-down (allocate a
;; node, then fill in its children with vector-set!: stores into older
;; objects, which the write barrier sees) and bottom-up (children first).
;; Every tree node is a 4-slot vector, like GCBench's Node (left, right,
;; i, j).  The program allocates tens of megabytes against a live heap of
;; about two, so the collector has to run many times; run it with
;; GCHEAP_TRACE=1 to see one line per collection on stderr.
;;
;; torture-interval: 20000  (test/lisp/run_programs.sh torture: collect every
;; 20000 allocations instead of every 100; the live heap is large)

(define stretch-depth 15)
(define long-lived-depth 13)
(define array-size 40000)
(define min-depth 4)
(define max-depth 13)

(define (make-node left right) (vector left right 0 0))
(define (left node) (vector-ref node 0))
(define (right node) (vector-ref node 1))

;; Nodes in a complete tree of the given depth.
(define (tree-size depth) (- (expt 2 (+ depth 1)) 1))

;; How many trees of a depth to build: as many nodes as the stretch tree.
(define (iterations depth)
  (* 2 (quotient (tree-size stretch-depth) (tree-size depth))))

;; Top-down: give an existing node children, then recurse.
(define (populate! depth node)
  (when (> depth 0)
    (vector-set! node 0 (make-node '() '()))
    (vector-set! node 1 (make-node '() '()))
    (populate! (- depth 1) (left node))
    (populate! (- depth 1) (right node))))

;; Bottom-up: build the children first.
(define (make-tree depth)
  (if (<= depth 0)
      (make-node '() '())
      (make-node (make-tree (- depth 1)) (make-tree (- depth 1)))))

;; Count the nodes (and so touch every one).
(define (tree-nodes node)
  (if (null? (left node))
      1
      (+ 1 (tree-nodes (left node)) (tree-nodes (right node)))))

(define (time-construction depth)
  (let ((n (iterations depth))
        (expected (tree-size depth)))
    (let loop ((i 0) (ok #t))
      (if (< i n)
          (let ((a (make-node '() '())))
            (populate! depth a)
            (let ((b (make-tree depth)))
              (loop (+ i 1)
                    (and ok
                         (= (tree-nodes a) expected)
                         (= (tree-nodes b) expected)))))
          (begin
            (display "  depth ")
            (display depth)
            (display ": ")
            (display n)
            (display " trees top-down and ")
            (display n)
            (display " bottom-up, ")
            (display expected)
            (display " nodes each: ")
            (display (if ok "ok" "WRONG"))
            (newline))))))

(define (cycles) (cdr (assq 'cycles (gc-stats))))
(define cycles-at-start (cycles))

(display "GCBench for tinylisp: trees of 4-slot vectors")
(newline)

(display "  stretching memory with a tree of depth ")
(display stretch-depth)
(display ": ")
(display (tree-nodes (make-tree stretch-depth)))
(display " nodes")
(newline)

(display "  creating a long-lived tree of depth ")
(display long-lived-depth)
(display " and a vector of ")
(display array-size)
(display " flonums")
(newline)
(define long-lived (make-node '() '()))
(populate! long-lived-depth long-lived)
(define array (make-vector array-size 0.0))
(do ((i 1 (+ i 1))) ((= i array-size))
  (vector-set! array i (/ 1.0 i)))

(do ((d min-depth (+ d 2))) ((> d max-depth))
  (time-construction d))

(display "  long-lived tree still intact: ")
(display (= (tree-nodes long-lived) (tree-size long-lived-depth)))
(newline)
(display "  long-lived vector: element 1000 is ")
(display (vector-ref array 1000))
(newline)
(gc)
(display "  the collector ran during the benchmark: ")
(display (> (cycles) cycles-at-start))
(newline)
