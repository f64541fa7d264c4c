;; strings.scm -- building and taking apart strings: joins, splits,
;; searching, a Caesar cipher, a word count, and a large string grown by
;; repeated string-append (each step allocates a new string and its
;; character block, leaving the old ones as garbage).

(define (string-join strs sep)
  (if (null? strs)
      ""
      (let loop ((acc (car strs)) (rest (cdr strs)))
        (if (null? rest)
            acc
            (loop (string-append acc sep (car rest)) (cdr rest))))))

(define (string-split s ch)
  (let loop ((i 0) (start 0) (acc '()))
    (cond ((= i (string-length s))
           (reverse (cons (substring s start i) acc)))
          ((char=? (string-ref s i) ch)
           (loop (+ i 1) (+ i 1) (cons (substring s start i) acc)))
          (else (loop (+ i 1) start acc)))))

(define (string-reverse s) (list->string (reverse (string->list s))))

(define (palindrome? s)
  (let ((letters (let keep ((cs (string->list (string-downcase s))) (acc '()))
                   (cond ((null? cs) (list->string (reverse acc)))
                         ((char-alphabetic? (car cs)) (keep (cdr cs) (cons (car cs) acc)))
                         (else (keep (cdr cs) acc))))))
    (string=? letters (string-reverse letters))))

;; Index of needle in haystack, or #f (naive search).
(define (string-search needle haystack)
  (let ((n (string-length needle)) (h (string-length haystack)))
    (let loop ((i 0))
      (cond ((> (+ i n) h) #f)
            ((string=? needle (substring haystack i (+ i n))) i)
            (else (loop (+ i 1)))))))

(define (caesar s k)
  (list->string
   (map (lambda (c)
          (cond ((char-alphabetic? c)
                 (let ((base (if (char<? c #\a) 65 97)))
                   (integer->char (+ base (modulo (+ (- (char->integer c) base) k) 26)))))
                (else c)))
        (string->list s))))

(define (checksum s)
  (let loop ((i 0) (sum 0))
    (if (= i (string-length s))
        sum
        (loop (+ i 1) (modulo (+ (* sum 31) (char->integer (string-ref s i))) 1000000007)))))

(define words (string-split "the quick brown fox jumps over the lazy dog the end" #\space))
(display "split: ")
(write words)
(newline)
(display "join: ")
(write (string-join (reverse words) "-"))
(newline)
(display "upcase: ")
(display (string-upcase (string-join words " ")))
(newline)

(define (count-words ws)
  (let loop ((ws ws) (counts '()))
    (if (null? ws)
        counts
        (let ((entry (assoc (car ws) counts)))
          (if entry
              (begin (set-cdr! entry (+ (cdr entry) 1)) (loop (cdr ws) counts))
              (loop (cdr ws) (cons (cons (car ws) 1) counts)))))))
(display "word counts: ")
(write (reverse (count-words words)))
(newline)

(display "palindromes: ")
(display (map palindrome? '("A man, a plan, a canal: Panama" "tinylisp" "Was it a car or a cat I saw?")))
(newline)
(display "search: ")
(display (list (string-search "lazy" "the quick brown fox jumps over the lazy dog")
               (string-search "cat" "the quick brown fox")))
(newline)
(define secret (caesar "Garbage Collection, Go style!" 13))
(display "rot13: ")
(display secret)
(display " -> ")
(display (caesar secret 13))
(newline)

;; FizzBuzz into one string.
(define (fizzbuzz n)
  (cond ((= 0 (modulo n 15)) "FizzBuzz")
        ((= 0 (modulo n 3)) "Fizz")
        ((= 0 (modulo n 5)) "Buzz")
        (else (number->string n))))
(display (string-join (map fizzbuzz '(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)) " "))
(newline)

;; Grow a string by appending: 3000 steps, O(n^2) bytes of garbage.
(define big
  (let loop ((i 1) (s ""))
    (if (> i 3000)
        s
        (loop (+ i 1) (string-append s (number->string i) ",")))))
(display "big string: length ")
(display (string-length big))
(display ", checksum ")
(display (checksum big))
(display ", ends with ")
(write (substring big (- (string-length big) 10) (string-length big)))
(newline)

;; The same string built in place with make-string and string-set!.
(define pieces (map (lambda (i) (string-append (number->string i) ",")) 
                    (let count ((i 3000) (acc '())) (if (= i 0) acc (count (- i 1) (cons i acc))))))
(define total (apply + (map string-length pieces)))
(define buffer (make-string total #\space))
(let fill ((ps pieces) (pos 0))
  (unless (null? ps)
    (let ((p (car ps)))
      (do ((k 0 (+ k 1))) ((= k (string-length p)))
        (string-set! buffer (+ pos k) (string-ref p k)))
      (fill (cdr ps) (+ pos (string-length p))))))
(display "built in place: same string? ")
(display (string=? buffer big))
(newline)

(display "numbers: ")
(write (list (number->string 3.25) (string->number "-42") (string->number "1e3")
             (string->number "abc") (number->string 255 2) (symbol->string 'sym)
             (string->symbol "made-up") (string #\a #\b #\c) (string<? "apple" "banana")))
(newline)
