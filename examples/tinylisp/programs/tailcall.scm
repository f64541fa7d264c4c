;; tailcall.scm -- proper tail calls: loops of a million iterations in
;; every tail position the evaluator knows (procedure bodies, if, cond,
;; case, and, or, when, unless, let, let*, letrec, begin, do, named let,
;; apply), mutual recursion, and continuation-passing style.  None of
;; them may grow the C stack; each iteration allocates a frame that is
;; garbage at the next one.
;;
;; torture-interval: 1000  (test/lisp/run_programs.sh torture: collect every
;; 1000 allocations instead of every 100; the live heap is large)

(define n 1000000)

(define (count-down k) (if (= k 0) 'done (count-down (- k 1))))
(display "plain self call:      ")
(display (count-down n))
(newline)

(display "named let:            ")
(display (let loop ((i 0) (acc 0)) (if (= i n) acc (loop (+ i 1) (+ acc i)))))
(newline)

;; Mutual recursion through letrec and through top-level defines.
(display "letrec even?/odd?:    ")
(display (letrec ((ev? (lambda (k) (if (= k 0) #t (od? (- k 1)))))
                  (od? (lambda (k) (if (= k 0) #f (ev? (- k 1))))))
           (list (ev? n) (od? n) (ev? (+ n 1)))))
(newline)
(define (ping k) (if (= k 0) 'ping (pong (- k 1))))
(define (pong k) (if (= k 0) 'pong (ping (- k 1))))
(display "ping/pong:            ")
(display (list (ping n) (ping (+ n 1))))
(newline)

;; Tail positions inside the derived forms.
(define (via-cond k)
  (cond ((= k 0) 'cond)
        ((odd? k) (via-cond (- k 1)))
        (else (via-cond (- k 1)))))
(define (via-case k)
  (case (modulo k 3)
    ((0) (if (= k 0) 'case (via-case (- k 1))))
    ((1) (via-case (- k 1)))
    (else (via-case (- k 1)))))
(define (via-and k) (and #t (if (= k 0) 'and (via-and (- k 1)))))
(define (via-or k) (or #f (if (= k 0) 'or (via-or (- k 1)))))
(define (via-when k) (if (= k 0) 'when (when #t (via-when (- k 1)))))
(define (via-unless k) (if (= k 0) 'unless (unless #f (via-unless (- k 1)))))
(define (via-let k) (let ((j (- k 1))) (if (< j 0) 'let (via-let j))))
(define (via-let* k) (let* ((a k) (b (- a 1))) (if (< b 0) 'let* (via-let* b))))
(define (via-begin k) (begin (if (= k 0) 'begin (via-begin (- k 1)))))
(define (via-apply k) (if (= k 0) 'apply (apply via-apply (list (- k 1)))))
(display "derived forms:        ")
(display (map (lambda (f) (f n))
              (list via-cond via-case via-and via-or via-when via-unless
                    via-let via-let* via-begin via-apply)))
(newline)

;; A variadic loop.
(define (sum-args acc . rest)
  (if (null? rest) acc (apply sum-args (+ acc (car rest)) (cdr rest))))
(display "variadic apply loop:  ")
(display (sum-args 0 1 2 3 4 5 6 7 8 9 10))
(newline)

(display "do loop:              ")
(display (do ((i 0 (+ i 1)) (acc 0 (+ acc 2))) ((= i n) acc)))
(newline)

;; Continuation-passing style: every call is a tail call, the
;; continuation chain lives in the heap instead.
(define (fact-cps k cont)
  (if (= k 0) (cont 1) (fact-cps (- k 1) (lambda (v) (cont (* k v))))))
(display "CPS factorial 18:     ")
(display (fact-cps 18 (lambda (v) v)))
(newline)
(define (count-cps k cont) (if (= k 0) (cont 0) (count-cps (- k 1) (lambda (v) (cont (+ v 1))))))
(display "CPS count 20000:      ")
(display (count-cps 20000 (lambda (v) v)))
(newline)
