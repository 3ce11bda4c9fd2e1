#!/bin/sh
# Install the Debian packages coopt's tests and demo need, only those that are missing.
# Safe to run again; does nothing when everything is present.
set -eu
need=""
have() { command -v "$1" >/dev/null 2>&1; }
have clang || need="$need clang"
# clang's runtimes (ASan, UBSan, libFuzzer: the verifier's sanitizer build and fuzz target) are a package of their
# own that clang only recommends.
rt_dir=$(clang -print-runtime-dir 2>/dev/null || true)
rt=""
for f in "$rt_dir"/libclang_rt.fuzzer-*.a "$rt_dir"/libclang_rt.fuzzer.a; do [ -e "$f" ] && rt="$f"; done
if [ -z "$rt" ]; then
    major=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n 1)
    need="$need libclang-rt-${major:+$major-}dev"
fi
have llvm-profdata || ls /usr/lib/llvm-*/bin/llvm-profdata >/dev/null 2>&1 || need="$need llvm"
# `coopt profile` reads inlining records with llvm-symbolizer (binutils' addr2line also does)
have llvm-symbolizer || have addr2line || case " $need " in *" llvm "*) ;; *) need="$need llvm" ;; esac
have ld.lld || need="$need lld"
# another compiler for the `compilers` level and its tests (agents/compiler/othercc.py): gcc. Another clang
# release (clang-19) is used when installed, not installed here: it is large and gcc already exercises the level.
have gcc || need="$need gcc"
have perf || need="$need linux-perf"
have scons || need="$need scons"
have cmake || need="$need cmake"
have ninja || need="$need ninja-build"
have make || need="$need make"
have dpkg-source || need="$need dpkg-dev"
have ccache || need="$need ccache"
# autotools and libtool: libyaml's tarball needs autoreconf (tests/test_libtool.py); libtool-bin is the libtool
# script itself (tests/test_shared_libs.py)
have autoreconf || need="$need autoconf"
have automake || need="$need automake"
have libtoolize || need="$need libtool"
have libtool || need="$need libtool-bin"
# sccache behind coopt-cc (tests/test_launcher*.py); Debian's package, a server started on first use
have sccache || need="$need sccache"
have valgrind || need="$need valgrind"
# containment of candidate code (src/coopt/verify/bwrap.py); setpriv (util-linux) drops to uid 65534 as root
have bwrap || need="$need bubblewrap"
# real servers for the shared-cache tests: redis and nginx with its WebDAV module (built into nginx-core)
have redis-server || need="$need redis-server"
[ -x /usr/sbin/nginx ] || have nginx || need="$need nginx-core"
python3 -c 'import ensurepip' >/dev/null 2>&1 || need="$need python3-venv"
# headless Chromium renders `coopt report --format html` in the report's layout test (tests/test_report_view.py)
# and bench/report_screenshot.py
have chromium || need="$need chromium"
# xxhash.h for coopt-cc-fast, the C miss path built at install time
[ -f /usr/include/xxhash.h ] || need="$need libxxhash-dev"
[ -z "$need" ] && exit 0
echo "installing Debian packages:$need"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
