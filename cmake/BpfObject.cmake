# BPF objects and their libbpf skeletons (docs/STYLE.md R10).
#
#   add_bpf_object(<name> SRC <file.bpf.c> [HEADERS <header>...] [INCLUDES <dir>...])
#
# compiles <file.bpf.c> with clang -target bpf into ${CMAKE_CURRENT_BINARY_DIR}/<name>.bpf.o,
# runs `bpftool gen skeleton <obj> name <name>` into
# ${CMAKE_CURRENT_BINARY_DIR}/skel/<name>.skel.h, and defines an INTERFACE target <name>_skel
# that carries that include directory, libbpf, and a build-order dependency on the generation.
# The skeleton embeds the object, so nothing reads the .o at run time. Every header the program
# includes must be listed in HEADERS (the custom command has no dependency scanning).
#
# Configure fails on clang < 14 or bpftool < 7 (bpftool 7 emits the C++ wrappers T::open, load,
# destroy that datapath/bpf/skeleton.h builds on).

set(XEMS_BPF_CLANG "" CACHE FILEPATH "clang used for -target bpf (default: clang in PATH)")
set(XEMS_BPFTOOL "" CACHE FILEPATH "bpftool used for skeletons (default: /usr/sbin/bpftool)")

if(NOT XEMS_BPF_CLANG)
  find_program(XEMS_BPF_CLANG_FOUND NAMES clang clang-14 clang-15 clang-16 REQUIRED)
  set(XEMS_BPF_CLANG "${XEMS_BPF_CLANG_FOUND}" CACHE FILEPATH "" FORCE)
endif()
if(NOT XEMS_BPFTOOL)
  find_program(XEMS_BPFTOOL_FOUND NAMES bpftool HINTS /usr/sbin /sbin /usr/local/sbin REQUIRED)
  set(XEMS_BPFTOOL "${XEMS_BPFTOOL_FOUND}" CACHE FILEPATH "" FORCE)
endif()

execute_process(COMMAND ${XEMS_BPF_CLANG} --version
  OUTPUT_VARIABLE _xems_clang_out RESULT_VARIABLE _xems_clang_rc ERROR_QUIET)
if(NOT _xems_clang_rc EQUAL 0 OR NOT _xems_clang_out MATCHES "clang version ([0-9]+)\\.([0-9]+)")
  message(FATAL_ERROR "BPF: cannot run '${XEMS_BPF_CLANG} --version'")
endif()
set(XEMS_BPF_CLANG_VERSION "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
if(CMAKE_MATCH_1 LESS 14)
  message(FATAL_ERROR "BPF: clang ${XEMS_BPF_CLANG_VERSION} is too old, need >= 14")
endif()

execute_process(COMMAND ${XEMS_BPFTOOL} version
  OUTPUT_VARIABLE _xems_bpftool_out RESULT_VARIABLE _xems_bpftool_rc ERROR_QUIET)
if(NOT _xems_bpftool_rc EQUAL 0 OR NOT _xems_bpftool_out MATCHES "v([0-9]+)\\.([0-9]+)")
  message(FATAL_ERROR "BPF: cannot run '${XEMS_BPFTOOL} version'")
endif()
set(XEMS_BPFTOOL_VERSION "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
if(CMAKE_MATCH_1 LESS 7)
  message(FATAL_ERROR "BPF: bpftool ${XEMS_BPFTOOL_VERSION} is too old, need >= 7")
endif()

# clang -target bpf has no system include path of its own: reuse the host's, after everything
# else (-idirafter), so <linux/...> and <asm/...> (multiarch dir) resolve as in libbpf-bootstrap.
execute_process(COMMAND ${XEMS_BPF_CLANG} -v -E -x c /dev/null
  ERROR_VARIABLE _xems_clang_v OUTPUT_QUIET RESULT_VARIABLE _xems_clang_rc)
if(NOT _xems_clang_rc EQUAL 0)
  message(FATAL_ERROR "BPF: cannot list clang's system include directories")
endif()
string(REGEX MATCH "#include <...> search starts here:\n(.*)End of search list" _m "${_xems_clang_v}")
string(REGEX REPLACE "\n" ";" _xems_dirs "${CMAKE_MATCH_1}")
set(XEMS_BPF_SYSTEM_INCLUDES "")
foreach(d ${_xems_dirs})
  string(STRIP "${d}" d)
  if(d)
    list(APPEND XEMS_BPF_SYSTEM_INCLUDES -idirafter ${d})
  endif()
endforeach()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(XEMS_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(XEMS_BPF_ARCH arm64)
else()
  set(XEMS_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

message(STATUS "BPF: clang ${XEMS_BPF_CLANG_VERSION} (${XEMS_BPF_CLANG}), "
               "bpftool ${XEMS_BPFTOOL_VERSION} (${XEMS_BPFTOOL}), arch ${XEMS_BPF_ARCH}")

function(add_bpf_object name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "SRC" "HEADERS;INCLUDES")
  if(NOT ARG_SRC)
    message(FATAL_ERROR "add_bpf_object(${name}): SRC is required")
  endif()
  get_filename_component(src ${ARG_SRC} ABSOLUTE)
  set(headers "")
  foreach(h ${ARG_HEADERS})
    get_filename_component(h ${h} ABSOLUTE)
    list(APPEND headers ${h})
  endforeach()
  set(includes "")
  foreach(i ${ARG_INCLUDES})
    get_filename_component(i ${i} ABSOLUTE)
    list(APPEND includes -I${i})
  endforeach()

  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${name}.skel.h)

  # -mcpu=v3 (ALU32, JMP32; kernel >= 5.1) gives shorter code than the generic v1 default.
  add_custom_command(OUTPUT ${obj}
    COMMAND ${XEMS_BPF_CLANG} -g -O2 -Wall -Wextra -Werror -target bpf -mcpu=v3
            -D__TARGET_ARCH_${XEMS_BPF_ARCH} ${XEMS_BPF_SYSTEM_INCLUDES} ${includes}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${headers}
    COMMAND_EXPAND_LISTS
    VERBATIM
    COMMENT "BPF object ${name}.bpf.o")

  add_custom_command(OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND ${XEMS_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    VERBATIM
    COMMENT "BPF skeleton ${name}.skel.h")

  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${skel_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set_property(TARGET ${name}_skel PROPERTY XEMS_BPF_OBJECT ${obj})
endfunction()
