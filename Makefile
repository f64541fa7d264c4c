# gcheap -- one Makefile for the library, tests, examples and benchmarks.
#
#   make            libgcheap.a + libgcheap.so (release, -O2)
#   make check      every pass of the suite (test/check.sh): plain, ASan+UBSan,
#                   TSan, torture, debug knobs; ends "N passed, N failed"
#   make check-quick   build and run every test once (the plain pass)
#   make debug      the suite with GCH_DEBUG assertions, -O0
#   make asan|ubsan|tsan   the suite under a sanitizer
#   make fuzz       the libFuzzer harness for FUZZ_TIME s (also fuzz-smoke, fuzz-merge)
#   make bench      build and run the benchmarks
#   make demo       the README demo: tinylisp with GCHEAP_TRACE=1
#   make install PREFIX=/usr/local DESTDIR=
#
# Sources are discovered: every src/*/*.c goes into the library, every
# test/*/test_*.c is one test program, every bench/bench_*.c one benchmark.

CC ?= cc
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0
SOMAJOR := 0

OPT ?= -O2 -g
SAN ?=
DEFS ?=
WARN := -Wall -Wextra -Werror
CFLAGS_ALL := -std=c11 $(WARN) $(OPT) $(SAN) $(DEFS) -D_GNU_SOURCE -pthread \
              -mcx16 -DAO_CMPXCHG16B_AVAILABLE \
              -Iinclude -Isrc -fvisibility=hidden -fPIC $(CFLAGS)
LDLIBS_ALL := -latomic_ops -lpthread -lm $(LDLIBS)

LIB_SRCS := $(sort $(wildcard src/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(sort $(wildcard test/*/test_*.c))
TEST_BINS := $(TEST_SRCS:%.c=$(BUILD)/%)
TEST_HELPERS := $(wildcard test/*.c)
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)
LISP_SRCS := $(sort $(wildcard examples/tinylisp/*.c))
HDRS := include/gcheap.h $(wildcard src/*/*.h src/*.h test/*.h examples/tinylisp/*.h)

.PHONY: all lib check check-quick test-bins debug asan ubsan tsan bench demo install \
        clean tinylisp tinylisp-boehm deps stress \
        debug-bins asan-bins ubsan-bins tsan-bins

all: lib
lib: $(BUILD)/libgcheap.a $(BUILD)/libgcheap.so

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libgcheap.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libgcheap.so: $(LIB_OBJS)
	$(CC) $(CFLAGS_ALL) -shared -Wl,-soname,libgcheap.so.$(SOMAJOR) -Wl,-z,start-stop-visibility=hidden -o $@ $^ $(LDLIBS_ALL)

# Tests link the static library (so they may call internal functions
# through src/ headers) plus the shared helpers in test/*.c, and Boehm GC
# for the differential tests.
$(BUILD)/test/%: test/%.c $(BUILD)/libgcheap.a $(TEST_HELPERS) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itest -o $@ $< $(TEST_HELPERS) $(BUILD)/libgcheap.a -lgc $(LDLIBS_ALL)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libgcheap.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ibench -o $@ $< $(BUILD)/libgcheap.a -lgc -lmimalloc -ljemalloc $(LDLIBS_ALL)

# tinylisp: the same interpreter against gcheap and against Boehm GC.
$(BUILD)/tinylisp: $(LISP_SRCS) $(BUILD)/libgcheap.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DLISP_GC_GCHEAP -o $@ $(LISP_SRCS) $(BUILD)/libgcheap.a $(LDLIBS_ALL)
$(BUILD)/tinylisp-boehm: $(LISP_SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DLISP_GC_BOEHM -o $@ $(LISP_SRCS) -lgc $(LDLIBS_ALL)
tinylisp: $(BUILD)/tinylisp
tinylisp-boehm: $(BUILD)/tinylisp-boehm

test-bins: lib $(TEST_BINS) $(if $(LISP_SRCS),$(BUILD)/tinylisp $(BUILD)/tinylisp-boehm)

# make check: every pass (test/check.sh builds what each needs).
check: deps
	@MAKE="$(MAKE)" BUILD=$(BUILD) ./test/check.sh
check-quick: deps test-bins
	@BUILD=$(BUILD) ./test/run.sh $(TEST_BINS)

# Build variants, each in build/NAME: `make NAME` runs the suite once in
# it, `make NAME-bins` only builds it (for test/check.sh).
VARIANT_debug := BUILD=build/debug OPT="-O0 -g" DEFS="-DGCH_DEBUG=1"
VARIANT_asan := BUILD=build/asan OPT="-O1 -g" DEFS="-DGCH_DEBUG=1" \
  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
VARIANT_ubsan := BUILD=build/ubsan OPT="-O1 -g" DEFS="-DGCH_DEBUG=1" \
  SAN="-fsanitize=undefined -fno-sanitize-recover=undefined"
VARIANT_tsan := BUILD=build/tsan OPT="-O1 -g" DEFS="-DGCH_DEBUG=1" SAN="-fsanitize=thread"
debug asan ubsan tsan:
	$(MAKE) $(VARIANT_$@) check-quick
debug-bins asan-bins ubsan-bins tsan-bins:
	@$(MAKE) $(VARIANT_$(@:-bins=)) test-bins

# The long concurrent stress: 10^5 back-to-back cycles under checkmark.
stress: lib $(BUILD)/test/gc/test_concurrent
	GCHEAP_STRESS_CYCLES=100000 $(BUILD)/test/gc/test_concurrent

# The libFuzzer harness (test/fuzz/, clang only).  fuzz-build rebuilds the
# library with ASan + UBSan + coverage into $(FUZZ_BUILD) and links the
# harness with libFuzzer; fuzz runs it FUZZ_TIME seconds over
# test/fuzz/corpus (read only: new inputs and crash files go to
# $(FUZZ_BUILD)); fuzz-smoke is a FUZZ_SMOKE_TIME run; fuzz-merge
# replaces test/fuzz/corpus with a small set of inputs (greedy set cover
# of the edges) of test/fuzz/corpus plus $(FUZZ_BUILD)/corpus.  The corpus
# itself replays in every `make check` (test/fuzz/test_fuzz_corpus, any
# compiler).
FUZZ_BUILD ?= build/fuzz
FUZZ_TIME ?= 300
FUZZ_SMOKE_TIME ?= 60
FUZZ_FLAGS ?=
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
# No comparison tracing: the input is a byte code read through modulos,
# with no magic values to solve, and tracing doubled the run time.
FUZZ_COV := -fno-sanitize-coverage=trace-cmp
FUZZ_RUN = $(FUZZ_BUILD)/fuzz_heap -artifact_prefix=$(FUZZ_BUILD)/ -timeout=60 \
           -print_final_stats=1 $(FUZZ_FLAGS)
.PHONY: fuzz fuzz-build fuzz-smoke fuzz-merge

$(BUILD)/test/fuzz/test_fuzz_corpus: test/fuzz/fuzz_heap.c
$(BUILD)/fuzz_heap: test/fuzz/fuzz_heap.c $(BUILD)/libgcheap.a $(HDRS)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer $(FUZZ_COV) -o $@ $< $(BUILD)/libgcheap.a $(LDLIBS_ALL)
fuzz-build: deps
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) OPT="-O1 -g" DEFS="-DGCH_DEBUG=1" \
	  SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link $(FUZZ_COV)" $(FUZZ_BUILD)/fuzz_heap
fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_RUN) -max_total_time=$(FUZZ_TIME) $(FUZZ_BUILD)/corpus test/fuzz/corpus \
	  test/fuzz/crashes
fuzz-smoke:
	$(MAKE) fuzz FUZZ_TIME=$(FUZZ_SMOKE_TIME)
fuzz-merge: fuzz-build
	rm -rf $(FUZZ_BUILD)/merged && mkdir -p $(FUZZ_BUILD)/merged $(FUZZ_BUILD)/corpus
	$(FUZZ_RUN) -set_cover_merge=1 -use_counters=0 $(FUZZ_BUILD)/merged \
	  test/fuzz/corpus $(FUZZ_BUILD)/corpus
	rm -f test/fuzz/corpus/* && cp $(FUZZ_BUILD)/merged/* test/fuzz/corpus/

bench: deps lib $(BENCH_BINS) $(if $(LISP_SRCS),$(BUILD)/tinylisp $(BUILD)/tinylisp-boehm)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done
	@if [ -x bench/lisp.sh ]; then BUILD=$(BUILD) bench/lisp.sh; fi

demo: deps $(BUILD)/tinylisp
	GCHEAP_TRACE=1 $(BUILD)/tinylisp examples/tinylisp/programs/gcbench.scm

deps:
	@./scripts/deps.sh

$(BUILD)/gcheap.pc: Makefile
	@mkdir -p $(dir $@)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: gcheap\nDescription: embeddable garbage-collected heap\nVersion: %s\nLibs: -L$${libdir} -lgcheap\nLibs.private: -latomic_ops -lpthread -lm\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' > $@

install: lib $(BUILD)/gcheap.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/gcheap.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libgcheap.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libgcheap.so $(DESTDIR)$(PREFIX)/lib/libgcheap.so.$(VERSION)
	ln -sf libgcheap.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libgcheap.so.$(SOMAJOR)
	ln -sf libgcheap.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libgcheap.so
	install -m 644 $(BUILD)/gcheap.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

clean:
	rm -rf build
