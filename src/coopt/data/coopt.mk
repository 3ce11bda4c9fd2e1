# coopt.mk: build a Makefile project's C code through coopt-cc.
#
#   include $(shell coopt make-include)        # after the lines that set CC, e.g. at the end of the Makefile
#
# CC becomes coopt-cc. The real compiler behind it is, in this order:
#   - COOPT_COMPILER, when set (environment, command line or Makefile); it is exported to the compiles;
#   - the CC the Makefile, the environment or the command line chose: CC becomes `coopt-cc <that CC>`, so a CC
#     with options (`gcc -std=gnu99`) keeps them;
#   - otherwise coopt's own default (coopt.toml's [compiler] path, else clang), not make's built-in `cc`.
# COOPT_CC names the wrapper (default: coopt-cc on PATH). A CC that already runs coopt-cc is left alone, so the
# file can be included twice and by sub-makes.

COOPT_CC ?= coopt-cc

ifneq ($(notdir $(firstword $(CC))),$(notdir $(firstword $(COOPT_CC))))
  ifneq ($(strip $(COOPT_COMPILER)),)
    export COOPT_COMPILER
    override CC := $(COOPT_CC)
  else ifeq ($(origin CC),default)
    override CC := $(COOPT_CC)
  else
    override CC := $(COOPT_CC) $(CC)
  endif
endif
