# phishlens — one Makefile.
#   make            build build/phishlens (and the library build/libphishlens.a)
#   make test       install missing Debian packages (as root), build, run the suite
#   make asan       the same suite built with address + undefined sanitizers
#   make demo       the main job on the embedded default
#   make bench      build and run the benchmarks in bench/
#   make fuzz       build the libFuzzer targets (clang)
#
# Layout: every src/<module>/*.c except src/cli goes into the library;
# tests/test_*.c are one program each; bench/*.c one program each.
# Files named *_avx2.c / *_avx512.c / *_amx.c get the matching -m flags and are
# selected at run time by CPU feature checks (only on x86-64).

BUILD   ?= build
CC      ?= cc
WERROR  ?=
PKGS    := libcjson libpcre2-8 gmime-3.0 gumbo libxxhash libzstd openblas libxml-2.0 zlib
ARCH    := $(shell uname -m)
V       ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wcast-qual -Wdouble-promotion
# pkg-config -I paths become -isystem so third-party headers do not trip our warnings.
PKG_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT     ?= -O2
CFLAGS  ?=
BASEFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) -g -fopenmp $(WARN) $(WERROR) \
             -Isrc $(PKG_CFLAGS) $(SANFLAGS)
LDLIBS  := $(PKG_LIBS) -fopenmp -lm -lpthread $(SANFLAGS)

AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq \
                -mavx512bf16 -mavx512vnni
AMX_FLAGS    := $(AVX512_FLAGS) -mamx-tile -mamx-bf16

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c))
ifneq ($(ARCH),x86_64)
LIB_SRC := $(filter-out %_avx2.c %_avx512.c %_amx.c,$(LIB_SRC))
endif
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB := $(BUILD)/libphishlens.a
BIN := $(BUILD)/phishlens

.PHONY: all deps test asan demo bench fuzz clean models check-aarch64
all: $(BIN) $(TEST_BIN)

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%_amx.o: %_amx.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) $(AMX_FLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	@echo "  LD $@"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/harness.h $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) -Itests -MMD -MP -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) -Ibench -o $@ $< $(LIB) $(LDLIBS)

test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@BUILD=$(BUILD) sh scripts/run_tests.sh

asan: deps
	@$(MAKE) --no-print-directory -j$$(nproc) BUILD=build-asan OPT=-O1 \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all
	@BUILD=build-asan PL_ASAN=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    sh scripts/run_tests.sh

demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	@sh scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory $(BENCH_BIN) $(BIN)
	@sh bench/run.sh

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_LIB_SRC := $(filter-out %_avx2.c %_avx512.c %_amx.c,$(LIB_SRC))
fuzz:
	@PL_DEPS_FUZZ=1 sh scripts/deps.sh
	@mkdir -p build-fuzz
	@for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); echo "clang $$n"; \
	  clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
	    -DPL_FUZZ_NO_SIMD -Isrc $(PKG_CFLAGS) $$f $(FUZZ_LIB_SRC) -o build-fuzz/$$n $(PKG_LIBS) -lm -fopenmp=libgomp -lgomp || exit 1; \
	done

models:
	@sh scripts/models.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:%=%.d)

# The aarch64 build must still compile (scalar paths): cross-compiler syntax check.
check-aarch64: deps
	@sh scripts/check_aarch64.sh
