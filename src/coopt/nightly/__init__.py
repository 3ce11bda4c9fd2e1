"""`coopt nightly`: the project's build, profile, optimize, rebuild, test and report as one resumable command.

    from coopt.nightly import run_nightly
    code = run_nightly(config, console)     # one of the EXIT_* codes in steps.py

`state.py` keeps each step's result, `steps.py` has the steps, `run.py` runs them in order and resumes.
"""
