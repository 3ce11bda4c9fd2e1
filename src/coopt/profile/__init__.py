"""Profiles: perf samples -> functions -> the journaled translation units that define them.

    build.py     the front door: record a command, or read perf.data or perf script text, into a Profile
    errors.py    ProfileError: one line for the user
    perf.py      run `perf record` on a workload, stream `perf script` out of a recording, name perf's failures
    script.py    parse `perf script` text into samples (call chains of symbol+offset frames)
    tus.py       the TUs the journal knows: compile records, their objects, what each object defines (`nm`)
    symbols.py   symbol tables of the programs and libraries that ran (`nm`), DWARF compile units
    attribute.py samples -> functions -> TUs, samples outside journaled code kept and named
    explain.py   the one-line error when nothing is journaled: the build, the journal, or the call chains to record
    model.py     the profile file: dataclasses, PROFILE_VERSION, JSON in and out
    merge.py     several workloads' profiles -> one, weighted
    report.py    the ranked table of `coopt profile show`

The schema and the attribution rules are documented in docs/profile.md.
"""
