;; alist-db.scm -- a tiny relational database: a record is an association
;; list of (field . value), a table is a list of records.  Queries are
;; built from higher-order procedures: where, select, order-by, group-by,
;; join; updates mutate records in place with set-cdr! (barriered stores
;; into old objects).  A generated table of 3000 rows makes it sizeable.
;;
;; torture-interval: 1000  (test/lisp/run_programs.sh torture: collect every
;; 1000 allocations instead of every 100; the live heap is large)

(define (make-record fields values) (map cons fields values))
(define (get record field)
  (let ((entry (assq field record)))
    (if entry (cdr entry) (error "no such field" field))))
(define (put! record field value) (set-cdr! (assq field record) value))

(define (filter keep? l)
  (cond ((null? l) '())
        ((keep? (car l)) (cons (car l) (filter keep? (cdr l))))
        (else (filter keep? (cdr l)))))
(define (fold f acc l) (if (null? l) acc (fold f (f acc (car l)) (cdr l))))

(define (where table field pred value)
  (filter (lambda (r) (pred (get r field) value)) table))
(define (select table . fields)
  (map (lambda (r) (map (lambda (f) (get r f)) fields)) table))

;; Stable insertion sort on a key.
(define (order-by table field less?)
  (define (insert r sorted)
    (cond ((null? sorted) (list r))
          ((less? (get r field) (get (car sorted) field)) (cons r sorted))
          (else (cons (car sorted) (insert r (cdr sorted))))))
  (fold (lambda (acc r) (insert r acc)) '() table))
(define (take l n) (if (or (= n 0) (null? l)) '() (cons (car l) (take (cdr l) (- n 1)))))

;; group-by: an alist from key to the rows with that key, keys in first-seen order.
(define (group-by table field)
  (reverse
   (fold (lambda (groups r)
           (let* ((k (get r field)) (g (assoc k groups)))
             (if g
                 (begin (set-cdr! g (append (cdr g) (list r))) groups)
                 (cons (list k r) groups))))
         '() table)))

(define (join left right field)
  (fold (lambda (acc l)
          (append acc
                  (map (lambda (r) (append l r))
                       (where right field equal? (get l field)))))
        '() left))

(define employee-fields '(id name dept salary age))
(define employees
  (map (lambda (row) (make-record employee-fields row))
       '((1 "Ada" eng 120 36) (2 "Grace" eng 135 45) (3 "Linus" ops 90 28)
         (4 "Barbara" research 150 52) (5 "Ken" ops 95 61) (6 "Dennis" eng 110 41)
         (7 "Frances" research 140 39) (8 "John" sales 70 33) (9 "Radia" ops 105 47)
         (10 "Edsger" research 125 58))))
(define departments
  (map (lambda (row) (make-record '(dept building floor) row))
       '((eng "North" 3) (ops "South" 1) (research "West" 7) (sales "East" 2))))

(define (show title rows)
  (display title)
  (newline)
  (for-each (lambda (row) (display "  ") (write row) (newline)) rows))

(show "engineers:" (select (where employees 'dept eq? 'eng) 'name 'salary))
(show "over 50, oldest first:"
      (select (order-by (where employees 'age > 50) 'age >) 'name 'age))
(show "top three salaries:"
      (select (take (order-by employees 'salary >) 3) 'name 'salary))
(show "per department (count, total, average):"
      (map (lambda (g)
             (let ((total (fold + 0 (map (lambda (r) (get r 'salary)) (cdr g)))))
               (list (car g) (length (cdr g)) total (quotient total (length (cdr g))))))
           (group-by employees 'dept)))
(show "who works where:"
      (select (order-by (join employees departments 'dept) 'floor <) 'name 'building 'floor))

;; A 10% raise for ops, in place.
(for-each (lambda (r) (put! r 'salary (quotient (* 11 (get r 'salary)) 10)))
          (where employees 'dept eq? 'ops))
(show "ops after the raise:" (select (where employees 'dept eq? 'ops) 'name 'salary))
(display "payroll: ")
(display (fold + 0 (map (lambda (r) (get r 'salary)) employees)))
(newline)

;; A generated table, rows from a linear congruential generator.
(define seed 12345)
(define (random-below n)
  (set! seed (modulo (* seed 16807) 2147483647))
  (modulo seed n))
(define dept-names '#(eng ops research sales))
(define big
  (let loop ((i 0) (rows '()))
    (if (= i 3000)
        (reverse rows)
        (loop (+ i 1)
              (cons (make-record employee-fields
                                 (list i
                                       (string-append "emp" (number->string i))
                                       (vector-ref dept-names (random-below 4))
                                       (+ 50 (random-below 100))
                                       (+ 20 (random-below 45))))
                    rows)))))
(show "generated table, per department (count, total salary):"
      (map (lambda (g) (list (car g) (length (cdr g))
                             (fold + 0 (map (lambda (r) (get r 'salary)) (cdr g)))))
           (group-by big 'dept)))
(display "generated table, aged 60 or more: ")
(display (length (where big 'age >= 60)))
(newline)
(display "generated table, first rich researcher: ")
(write (car (select (where (where big 'dept eq? 'research) 'salary > 140) 'name 'salary 'age)))
(newline)
