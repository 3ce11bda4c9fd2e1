"""The record every stage reads: CompileJob and LinkJob, the journal log of compiles and links, and relinking a
journaled link with some objects replaced. It imports nothing of coopt above it."""
