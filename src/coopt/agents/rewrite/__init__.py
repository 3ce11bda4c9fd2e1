"""LLM rewrites of a hot function at three levels: C source, LLVM IR, assembly; the sampling loop they share, the
context extraction and the prompts."""
