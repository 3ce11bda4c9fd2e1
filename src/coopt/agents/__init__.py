"""The proposers: level agents that build candidate objects for hot TUs, and the test-generation agent.

Agents propose; `coopt.verify` judges; `coopt.optimize` runs the loop and `coopt.cache` stores what was verified.
`registry.py` is the one table of levels; agents never import the optimizer, the reports or the CLI.
"""
