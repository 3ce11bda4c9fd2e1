"""The optimize run: propose -> judge -> publish. Options, the plan of hot TUs, the run loop, guide and budget,
state and resume, shards, progress."""
