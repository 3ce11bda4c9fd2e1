"""The wheel carries coopt-cc-fast, a native executable, so it must be tagged for its platform: a py3-none-any
wheel would install a Linux x86-64 binary anywhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, require


@pytest.mark.slow
def test_wheel_is_platform_tagged_and_carries_the_fast_path(tmp_path: Path) -> None:
    require("cc")
    if not Path("/usr/include/xxhash.h").exists():
        pytest.skip("xxhash.h is missing (libxxhash-dev): coopt-cc-fast is not built")
    tree = tmp_path / "src"
    # A copy of the tracked tree, so the build leaves nothing behind in the working tree.
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src, dst = ROOT / name, tree / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    out = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(tree)], check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    assert not wheel.name.endswith("-none-any.whl"), wheel.name
    assert wheel.name.endswith(platform + ".whl"), (wheel.name, platform)
    with zipfile.ZipFile(wheel) as z:
        info = z.getinfo("coopt/data/coopt-cc-fast")
        assert info.file_size > 0
        assert (info.external_attr >> 16) & 0o111, "coopt-cc-fast is not executable in the wheel"
        for part in ("cz_runtime.h", "cz_side_main.h", "cz_fuzz_main.h"):  # the verifier's harness runtime
            assert z.getinfo("coopt/verify/differential/c/" + part).file_size > 0
