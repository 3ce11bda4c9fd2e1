# coopt-toolchain.cmake: build a CMake project's C code through coopt-cc.
#
#   cmake -S . -B build -DCMAKE_TOOLCHAIN_FILE="$(coopt cmake-toolchain)"      [-G Ninja]
#
# The real compiler is CMAKE_C_COMPILER when given, else COOPT_COMPILER (a -D cache variable or an environment
# variable), else the first clang on PATH. coopt-cc runs in front of it as the compiler launcher, so CMake still
# identifies the real compiler and every compile and link line reads `coopt-cc /usr/bin/clang ...`.
# COOPT_CC names the coopt-cc to use (default: the one on PATH).

# Toolchain files are read again for each try_compile project; make sure our settings reach them too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES COOPT_COMPILER COOPT_CC)
list(REMOVE_DUPLICATES CMAKE_TRY_COMPILE_PLATFORM_VARIABLES)

if(NOT CMAKE_C_COMPILER)
  if(NOT COOPT_COMPILER AND DEFINED ENV{COOPT_COMPILER} AND NOT "$ENV{COOPT_COMPILER}" STREQUAL "")
    set(COOPT_COMPILER "$ENV{COOPT_COMPILER}")
  endif()
  if(COOPT_COMPILER)
    # A bare name is looked up on PATH; a path is used as it is.
    find_program(_coopt_real_cc NAMES "${COOPT_COMPILER}" NO_CACHE)
    if(NOT _coopt_real_cc)
      message(FATAL_ERROR "coopt: COOPT_COMPILER '${COOPT_COMPILER}' not found; set it to the real C compiler "
                          "(e.g. /usr/bin/clang)")
    endif()
  else()
    find_program(_coopt_real_cc NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 NO_CACHE)
    if(NOT _coopt_real_cc)
      message(FATAL_ERROR "coopt: no clang on PATH; install clang or pass -DCOOPT_COMPILER=/path/to/compiler")
    endif()
  endif()
  get_filename_component(_coopt_real_name "${_coopt_real_cc}" NAME)
  if(_coopt_real_name STREQUAL "coopt-cc")
    message(FATAL_ERROR "coopt: the real compiler '${_coopt_real_cc}' is coopt-cc itself; set COOPT_COMPILER to "
                        "the real compiler (e.g. /usr/bin/clang)")
  endif()
  set(CMAKE_C_COMPILER "${_coopt_real_cc}")
endif()

# Compiles CMake makes to probe the compiler (try_compile) are not the project's TUs: keep them out of the journal.
get_property(_coopt_in_try_compile GLOBAL PROPERTY IN_TRY_COMPILE)
if(NOT _coopt_in_try_compile)
  if(NOT COOPT_CC)
    find_program(COOPT_CC NAMES coopt-cc DOC "the coopt-cc compiler wrapper")
  endif()
  if(NOT COOPT_CC)
    message(FATAL_ERROR "coopt: coopt-cc not found on PATH; install coopt or pass -DCOOPT_CC=/path/to/coopt-cc")
  endif()
  set(CMAKE_C_COMPILER_LAUNCHER "${COOPT_CC}")
  # Links are journaled too: they tell which objects make up which program, for profiles and relinks.
  # (CMake 3.21 and later; older versions ignore the variable and only compiles are journaled.)
  set(CMAKE_C_LINKER_LAUNCHER "${COOPT_CC}")
endif()
