"""The optimize run: propose -> judge -> publish. Options, the plan of hot TUs, the run, state and resume, shards,
progress, the final measurement; search/ is the search of the lineage trees (guide, loop, attempt, sweep)."""
