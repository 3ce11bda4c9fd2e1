"""Finding the real compiler behind coopt-cc, in each of the three forms, without ever finding coopt-cc itself, and
the launcher (ccache, sccache, ...) in front of it when there is one (wrapper/launcher.py)."""

from __future__ import annotations

import os

from coopt.wrapper import launcher as launchmod

WRAPPER_NAMES = ("coopt-cc",)
# Depth of nested coopt-cc calls, passed to the real compiler's environment. A chain deeper than this means
# something resolves back to coopt-cc in a way the path checks could not see.
DEPTH_VAR = "COOPT_CC_DEPTH"
MAX_DEPTH = 4
INPUT_EXTENSIONS = frozenset({".c", ".h", ".i", ".s", ".S", ".o", ".a", ".so", ".cc", ".cpp", ".cxx", ".m"})


class CompilerNotFound(Exception):
    pass


class Recursion(Exception):
    pass


def _is_exe(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


# Every coopt-cc launcher (installed or a test's) imports this; no real compiler's first bytes contain it.
LAUNCHER_MARK = b"coopt.wrapper.main"


def is_coopt_launcher(path: str) -> bool:
    """True for any coopt-cc launcher, including another installation's (a different file than this one)."""
    try:
        with open(path, "rb") as f:
            return LAUNCHER_MARK in f.read(4096)
    except OSError:
        return False


def which(name: str, skip_real: str, skip_dirs: tuple[str, ...] = (), launchers: list[str] | None = None) -> str:
    """First executable called `name` on PATH that is not coopt-cc: not `skip_real` (this launcher) nor any other
    coopt-cc launcher (another virtualenv's, a test's).

    With `launchers` (a compiler's lookup), a launcher's symlink named like the compiler (/usr/lib/ccache/clang) is
    passed over as well, as the launcher itself passes over it, and the launcher it resolves to is appended there.
    """
    if "/" in name:
        return name if _is_exe(name) else ""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        d = d or "."
        if d in skip_dirs:
            continue
        cand = os.path.join(d, name)
        if not _is_exe(cand):
            continue
        real = os.path.realpath(cand)
        if real == skip_real or is_coopt_launcher(cand):
            continue
        if launchers is not None and launchmod.masquerading_as(cand, real):
            launchers.append(real)
            continue
        return cand
    return ""


def looks_like_compiler(arg: str, self_real: str) -> bool:
    """For the prefix form `coopt-cc clang -c ...`: is the first argument a compiler rather than an input?"""
    if not arg or arg.startswith("-") or arg.startswith("@"):
        return False
    if os.path.splitext(arg)[1] in INPUT_EXTENSIONS:
        return False
    return bool(which(arg, self_real))


class Resolved:
    """The real compiler: `path` as it will be executed and `name` (its basename, which selects a driver mode), and
    the launcher every real compile goes through ("" for none)."""

    __slots__ = ("path", "name", "args", "form", "lookup_name", "skip_dir", "self_path", "raw_args", "launcher")

    def __init__(self, path: str, args: list[str], form: str, lookup_name: str = "", skip_dir: str = "",
                 self_path: str = "", launcher: str = "") -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.args = args
        self.form = form
        # How `path` was found (the name looked up on PATH, a directory skipped), for the C fast path's re-check.
        self.lookup_name = lookup_name
        self.skip_dir = skip_dir
        self.self_path = self_path
        self.raw_args: list[str] = []  # coopt-cc's own arguments (in the prefix form, the compiler first)
        self.launcher = launcher

    def command(self, args: list[str]) -> tuple[str, list[str]]:
        """What runs the real compiler with `args`: the program to exec and its argv (through the launcher)."""
        return launchmod.command(self.launcher, self.path, args)


def resolve(argv: list[str], configured: str, configured_launcher: str = "") -> Resolved:
    """Work out the real compiler, its arguments and its launcher from coopt-cc's own argv (see _resolve)."""
    resolved = _resolve(argv, configured, configured_launcher)
    resolved.raw_args = argv[1:]
    return resolved


def find_compiler(name: str, self_real: str = "", skip_dirs: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """The compiler called `name` ("" when none), the name looked up on PATH, and the launcher found posing as it
    (/usr/lib/ccache/clang -> /usr/bin/ccache; "" for none)."""
    found: list[str] = []
    if "/" in name:
        path = name if _is_exe(name) else ""
        real = os.path.realpath(path) if path else ""
        if not path or not launchmod.masquerading_as(path, real):
            return path, name, ""
        found.append(real)
        name = os.path.basename(path)  # the real compiler behind a launcher's symlink: found as the launcher would
    path = which(name, self_real, skip_dirs, found)
    return path, name, found[0] if found else ""


def _launcher_path(name: str, self_real: str) -> str:
    path = which(name, self_real)
    if not path:
        raise CompilerNotFound(
            "coopt-cc: error: launcher '%s' not found on PATH; install it, or leave it out (COOPT_LAUNCHER, "
            "[compiler] launcher, or the word after coopt-cc)" % name
        )
    if os.path.realpath(path) == self_real or is_coopt_launcher(path):
        raise Recursion("coopt-cc: error: the launcher '%s' is coopt-cc itself; name ccache, sccache or another "
                        "launcher" % name)
    return path


def _resolve(argv: list[str], configured: str, configured_launcher: str) -> Resolved:
    """Work out the real compiler and its arguments from coopt-cc's own argv.

    Forms: masquerade (argv[0] is a symlink named like a compiler), prefix (`coopt-cc clang ...`, also with a
    launcher first: `coopt-cc ccache clang ...`), and plain (`CC=coopt-cc`, compiler from settings). The launcher is
    the one named after coopt-cc, else the configured one, else one found posing as the compiler on PATH. Raises
    CompilerNotFound or Recursion with a user-facing message.
    """
    depth = int(os.environ.get(DEPTH_VAR, "0") or "0")
    if depth >= MAX_DEPTH:
        raise Recursion(
            "coopt-cc: error: coopt-cc called itself %d times; the real compiler resolves back to coopt-cc. "
            "Set COOPT_COMPILER to the real compiler (e.g. /usr/bin/clang)." % depth
        )
    self_path = argv[0]
    self_real = os.path.realpath(self_path)
    base = os.path.basename(self_path)
    args = argv[1:]
    launcher = ""
    named = base in WRAPPER_NAMES and bool(args) and launchmod.is_launcher_name(args[0])
    if named:  # `coopt-cc ccache ...`
        launcher = _launcher_path(args[0], self_real)
        args = args[1:]
    elif configured_launcher:
        launcher = _launcher_path(configured_launcher, self_real)
    if base not in WRAPPER_NAMES:
        shim_dir = os.path.dirname(os.path.abspath(self_path))
        path, _, posing = find_compiler(base, self_real, (shim_dir,))
        if not path:
            raise CompilerNotFound(
                "coopt-cc: error: no real '%s' on PATH behind the shim in %s; install it or remove the shim"
                % (base, shim_dir)
            )
        return Resolved(path, args, "masquerade", base, shim_dir, self_path, launcher or posing)
    if args and looks_like_compiler(args[0], self_real):
        path, name, posing = find_compiler(args[0], self_real)
        if not path:
            raise CompilerNotFound("coopt-cc: error: no real '%s' on PATH behind the launcher %s" % (args[0], posing))
        if os.path.realpath(path) == self_real or is_coopt_launcher(path):
            raise Recursion("coopt-cc: error: 'coopt-cc %s': the compiler is coopt-cc itself" % args[0])
        return Resolved(path, args[1:], "prefix", name, "", self_path, launcher or posing)
    if launcher and args and _names_a_program(args[0]):
        # `coopt-cc ccache clang-99 -c ...`: the launcher would fail the same way; do not compile "clang-99".
        raise CompilerNotFound("coopt-cc: error: compiler '%s' (after %s) not found on PATH" % (args[0], launcher))
    bad = launchmod.misconfigured_compiler(configured)
    if bad:
        raise Recursion(bad)
    path, name, posing = find_compiler(configured, self_real)
    if not path:
        if "/" in configured and os.path.exists(configured):
            raise CompilerNotFound("coopt-cc: error: compiler '%s' is not executable" % configured)
        if os.path.realpath(configured) == self_real or os.path.basename(configured) in WRAPPER_NAMES:
            raise Recursion(
                "coopt-cc: error: the configured compiler '%s' is coopt-cc itself; set COOPT_COMPILER to the real "
                "compiler (e.g. clang)" % configured
            )
        raise CompilerNotFound(
            "coopt-cc: error: compiler '%s' not found on PATH; install it or set COOPT_COMPILER to the real compiler"
            % configured
        )
    if os.path.realpath(path) == self_real or is_coopt_launcher(path):
        raise Recursion(
            "coopt-cc: error: the configured compiler '%s' is coopt-cc itself; set COOPT_COMPILER to the real "
            "compiler (e.g. clang)" % configured
        )
    return Resolved(path, args, "prefix" if named else "plain", name, "", self_path, launcher or posing)


def _names_a_program(arg: str) -> bool:
    """A word after a launcher that can only be a compiler's name: not an option, an @file or an input."""
    return bool(arg) and arg[0] not in "-@" and os.path.splitext(arg)[1] not in INPUT_EXTENSIONS \
        and not os.path.exists(arg)
