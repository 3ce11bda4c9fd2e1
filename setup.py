"""Everything is in pyproject.toml; this only adds the build of coopt-cc-fast (see build_fastcc.py)."""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_fastcc  # noqa: E402


class BuildPyWithFastPath(build_py):
    def run(self) -> None:
        super().run()
        out = os.path.join(self.build_lib, "coopt", "data", "coopt-cc-fast")
        error = build_fastcc.build(out)
        if error and os.environ.get("COOPT_REQUIRE_FAST_PATH", "") not in ("", "0"):
            # CI recipes (integration/ci/) set it: a slow coopt-cc there is a broken recipe, not a detail.
            raise SystemExit("coopt: cannot build coopt-cc-fast (%s) and COOPT_REQUIRE_FAST_PATH is set; install "
                             "libxxhash-dev and a C compiler" % error)
        if error:
            # coopt works without it, only each compile pays Python's start-up (~10 ms instead of ~1 ms).
            sys.stderr.write("coopt: not building coopt-cc-fast (%s); install libxxhash-dev and a C compiler\n" % error)


class NativeDistribution(Distribution):
    """coopt-cc-fast is a native executable, so a wheel must carry the platform tag (not py3-none-any) and never
    be installed on another platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildPyWithFastPath}, distclass=NativeDistribution)
