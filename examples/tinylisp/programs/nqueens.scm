;; nqueens.scm -- the eight queens puzzle by backtracking.  Partial
;; placements are lists shared between branches; every solution is
;; collected, in lexicographic order, so the first one is well known.

;; Is a queen in `row` safe from the queens in `placed` (the rows of the
;; previous columns, nearest first)?
(define (safe? row placed)
  (let loop ((dist 1) (rest placed))
    (cond ((null? rest) #t)
          ((or (= (car rest) row)
               (= (car rest) (+ row dist))
               (= (car rest) (- row dist)))
           #f)
          (else (loop (+ dist 1) (cdr rest))))))

;; All solutions for an n x n board; each lists the row of columns 1..n.
(define (queens n)
  (define (try col placed)
    (if (> col n)
        (list (reverse placed))
        (let loop ((row n) (acc '()))
          (if (= row 0)
              acc
              (loop (- row 1)
                    (if (safe? row placed)
                        (append (try (+ col 1) (cons row placed)) acc)
                        acc))))))
  (try 1 '()))

;; Counting only, without building solutions.
(define (count-queens n)
  (let try ((col 1) (placed '()))
    (if (> col n)
        1
        (do ((row 1 (+ row 1))
             (sum 0 (if (safe? row placed)
                        (+ sum (try (+ col 1) (cons row placed)))
                        sum)))
            ((> row n) sum)))))

(define (show-board solution)
  (let ((n (length solution)))
    (for-each
     (lambda (r)
       (do ((c 1 (+ c 1)))
           ((> c n))
         (display (if (= (list-ref solution (- c 1)) r) " Q" " .")))
       (newline))
     (let count ((i n) (acc '())) (if (= i 0) acc (count (- i 1) (cons i acc)))))))

(define solutions (queens 8))
(display "8 queens: ")
(display (length solutions))
(display " solutions")
(newline)
(display "first: ")
(display (car solutions))
(newline)
(display "last:  ")
(display (car (last-pair solutions)))
(newline)
(show-board (car solutions))

(display "solutions for n = 1..8: ")
(display (map count-queens '(1 2 3 4 5 6 7 8)))
(newline)
