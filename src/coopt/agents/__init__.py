"""The optimizer: compiler tools, level agents, the test-generation agent and the guide (issue 5).

Agents propose; `coopt.verify` judges; `coopt.cache` stores what was verified.
"""
