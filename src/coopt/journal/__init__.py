"""The record every stage reads: CompileJob and LinkJob, the journal log of compiles and links, relinking a
journaled link with some objects replaced, and running a program against a relinked shared library
(shared_libs: libtool's .libs/libfoo.so and wrapper scripts). It imports nothing of coopt above it."""
