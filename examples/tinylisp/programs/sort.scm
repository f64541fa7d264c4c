;; sort.scm -- merge sort of 100000 pseudo-random numbers.  The numbers
;; come from the Park-Miller "minimal standard" generator; the sort is a
;; list merge sort written with tail-recursive loops only (no recursion
;; deeper than log n), so it conses about three million pairs, nearly all
;; garbage soon after.
;;
;; torture-interval: 100000  (test/lisp/run_programs.sh torture: collect every
;; 100000 allocations instead of every 100; the live heap is large)

(define count 100000)

(define seed 42)
(define (next-random!)
  (set! seed (modulo (* seed 16807) 2147483647))
  seed)

(define (random-list n)
  (let loop ((i 0) (acc '()))
    (if (= i n) acc (loop (+ i 1) (cons (modulo (next-random!) 1000000) acc)))))

;; (append (reverse rev) tail) in one pass.
(define (append-reverse rev tail)
  (if (null? rev) tail (append-reverse (cdr rev) (cons (car rev) tail))))

(define (merge a b less?)
  (let loop ((a a) (b b) (acc '()))
    (cond ((null? a) (append-reverse acc b))
          ((null? b) (append-reverse acc a))
          ((less? (car b) (car a)) (loop a (cdr b) (cons (car b) acc)))
          (else (loop (cdr a) b (cons (car a) acc))))))

;; Deal the elements alternately into two piles.
(define (split l)
  (let loop ((l l) (a '()) (b '()))
    (if (null? l) (cons a b) (loop (cdr l) (cons (car l) b) a))))

(define (merge-sort l less?)
  (if (or (null? l) (null? (cdr l)))
      l
      (let ((halves (split l)))
        (merge (merge-sort (car halves) less?)
               (merge-sort (cdr halves) less?)
               less?))))

(define (sorted? l less?)
  (or (null? l) (null? (cdr l))
      (and (not (less? (cadr l) (car l))) (sorted? (cdr l) less?))))

;; Position-weighted sum: changes if any element moves.
(define (checksum l)
  (let loop ((l l) (i 1) (sum 0))
    (if (null? l)
        sum
        (loop (cdr l) (+ i 1) (modulo (+ sum (* i (car l))) 1000000007)))))

(define data (random-list count))
(display "sorting ")
(display (length data))
(display " numbers; unsorted checksum ")
(display (checksum data))
(newline)

(define sorted (merge-sort data <))
(display "sorted: ")
(display (sorted? sorted <))
(display ", length ")
(display (length sorted))
(display ", checksum ")
(display (checksum sorted))
(newline)
(display "smallest five: ")
(display (list-tail (reverse (list-tail (reverse sorted) (- count 5))) 0))
(newline)
(display "largest: ")
(display (car (last-pair sorted)))
(display ", median: ")
(display (list-ref sorted (quotient count 2)))
(newline)

(define descending (merge-sort sorted >))
(display "descending: ")
(display (sorted? descending >))
(display ", same elements: ")
(display (equal? (reverse descending) sorted))
(newline)

;; Sorting is stable: sort pairs on their car only.
(define pairs (map (lambda (x) (cons (modulo x 10) x)) (list-tail data (- count 20))))
(define by-digit (merge-sort pairs (lambda (a b) (< (car a) (car b)))))
(display "stable on keys: ")
(display (let check ((l by-digit))
           (or (null? l) (null? (cdr l))
               (and (or (< (car (car l)) (car (cadr l)))
                        (= (car (car l)) (car (cadr l))))
                    (check (cdr l))))))
(newline)
