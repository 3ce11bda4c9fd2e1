"""Parts of bench/wrapper_overhead.py, one job per module.

    timing      run a command and time it; interleaved repetitions; medians
    machine     what the numbers were measured on (CPU, cores, load, tool versions)
    install     a private virtual environment with coopt installed the way users get it
    workloads   the small TU and Lua's tree, flags and commands
    compiles    per-compile latency: pass-through, miss and hit against plain clang (and ccache)
    builds      whole-build wall time of Lua with plain clang, coopt-cc and ccache
    breakdown   where coopt-cc's own time goes on a miss (miss_driver.py runs inside the installed python)
    report      the terminal table, the JSON results and the markdown page
"""
