;; tak.scm -- the Takeuchi function (Gabriel benchmark): deep non-tail
;; recursion over fixnums, no data structures at all.

(define (tak x y z)
  (if (not (< y x))
      z
      (tak (tak (- x 1) y z)
           (tak (- y 1) z x)
           (tak (- z 1) x y))))

;; Count the calls too, with a closure over a mutable counter.
(define calls 0)
(define (tak-counted x y z)
  (set! calls (+ calls 1))
  (if (not (< y x))
      z
      (tak-counted (tak-counted (- x 1) y z)
                   (tak-counted (- y 1) z x)
                   (tak-counted (- z 1) x y))))

(display "(tak 18 12 6) = ")
(display (tak 18 12 6))
(newline)

(display "(tak 22 16 8) = ")
(display (tak 22 16 8))
(newline)

(display "(tak 12 8 4) = ")
(display (tak-counted 12 8 4))
(display " in ")
(display calls)
(display " calls")
(newline)

(define (repeat n thunk)
  (if (> n 1) (begin (thunk) (repeat (- n 1) thunk)) (thunk)))
(display "ten more runs of (tak 18 12 6): ")
(display (repeat 10 (lambda () (tak 18 12 6))))
(newline)
