# libFuzzer targets: configure with CC=clang -DVTSM_FUZZ=ON (scripts/fuzz.sh does). Each
# ctest entry runs its target for VTSM_FUZZ_SECONDS (default 30) with the label "fuzz",
# which the default test run excludes (-LE 'fuzz|soak'): run them with `ctest -L fuzz`.
# Findings (crash-*, leak-*, timeout-* inputs) land in <build>/spec-tests/fuzz_artifacts.
if(VTSM_FUZZ)
  set(VTSM_FUZZ_SECONDS 30 CACHE STRING "How long each fuzz target runs under ctest (seconds)")
  if(NOT VTSM_FUZZ_SECONDS MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "VTSM_FUZZ_SECONDS must be a positive number of seconds")
  endif()
  # Start-up (loading the corpus) and the final merge come on top of the run time.
  math(EXPR fuzz_timeout "${VTSM_FUZZ_SECONDS} + 90")
  set(fuzz_artifacts ${CMAKE_CURRENT_BINARY_DIR}/fuzz_artifacts)
  file(MAKE_DIRECTORY ${fuzz_artifacts})
  function(vtsm_fuzz name)
    cmake_parse_arguments(F "" "" "SOURCES;DEFS;LIBS;SEEDS" ${ARGN})
    add_executable(${name} ${F_SOURCES})
    target_compile_definitions(${name} PRIVATE ${F_DEFS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    set(corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
    file(MAKE_DIRECTORY ${corpus})
    add_test(NAME ${name}
             COMMAND ${name} -max_total_time=${VTSM_FUZZ_SECONDS} -max_len=16384
                     -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${fuzz_artifacts}/${name}-
                     ${corpus} ${F_SEEDS})
    set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT ${fuzz_timeout})
  endfunction()

  # Seeds recorded from one real in-process session (fixture of the two session fuzzers).
  add_executable(fuzz_seedgen fuzz_seedgen.c)
  target_link_libraries(fuzz_seedgen PRIVATE vtsm_spdm_req vtsm_devemu)
  set(fuzz_seeds ${CMAKE_CURRENT_BINARY_DIR}/fuzz_seeds)
  add_test(NAME fuzz_seeds COMMAND fuzz_seedgen ${fuzz_seeds})
  set_tests_properties(fuzz_seeds PROPERTIES LABELS fuzz TIMEOUT 60 FIXTURES_SETUP fuzz_seeds)

  vtsm_fuzz(fuzz_proto SOURCES fuzz_proto.c LIBS vtsm_proto
            SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_seeds/proto)
  vtsm_fuzz(fuzz_requester SOURCES fuzz_wire.c DEFS FUZZ_REQUESTER
            LIBS vtsm_spdm_req vtsm_devemu vtsm_abi SEEDS ${fuzz_seeds}/requester)
  vtsm_fuzz(fuzz_device SOURCES fuzz_wire.c DEFS FUZZ_DEVICE
            LIBS vtsm_devemu vtsm_spdm_req vtsm_abi SEEDS ${fuzz_seeds}/device)
  set_tests_properties(fuzz_requester fuzz_device PROPERTIES FIXTURES_REQUIRED fuzz_seeds)
  vtsm_fuzz(fuzz_abi SOURCES fuzz_wire.c DEFS FUZZ_ABI LIBS vtsm_abi vtsm_spdm_req vtsm_devemu)
  vtsm_fuzz(fuzz_guest SOURCES fuzz_wire.c DEFS FUZZ_GUEST LIBS vtsm_tsm vtsm_devemu
            SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_seeds/guest)
  vtsm_fuzz(fuzz_parsers SOURCES fuzz_wire.c DEFS FUZZ_PARSERS
            LIBS vtsm_proto vtsm_abi vtsm_spdm_req vtsm_devemu)
endif()
