;; fib.scm -- doubly recursive Fibonacci: a quarter of a million calls,
;; each allocating an environment frame that dies at once.

(define (fib n)
  (if (< n 2)
      n
      (+ (fib (- n 1)) (fib (- n 2)))))

(define (fib-iter n)
  (let loop ((a 0) (b 1) (i 0))
    (if (= i n) a (loop b (+ a b) (+ i 1)))))

(display "fib(25) = ")
(display (fib 25))
(newline)

(display "fib(1..15) = ")
(display (map fib '(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)))
(newline)

(display "fib-iter(80) = ")
(display (fib-iter 80))
(newline)

(display "recursive and iterative agree up to 20: ")
(display (let check ((i 0))
           (cond ((> i 20) #t)
                 ((= (fib i) (fib-iter i)) (check (+ i 1)))
                 (else #f))))
(newline)
