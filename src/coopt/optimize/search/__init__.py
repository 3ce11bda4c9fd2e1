"""The search of the lineage trees: the guide's policy (guide, llm_guide), the loop that spends the budget on its
choices (loop), one attempt judged (attempt), and the compiler sweep (sweep)."""
