"""Compiler constituents as proposers and tools: clang flags, PGO, opt and llc, other installed compilers."""
