# libFuzzer targets: configure with CC=clang -DVTSM_FUZZ=ON (scripts/fuzz.sh does). Each
# ctest entry runs its target for 30 s with the label "fuzz", which the default test run
# excludes (-LE 'fuzz|soak'): run them with `ctest -L fuzz`.
if(VTSM_FUZZ)
  function(vtsm_fuzz name)
    cmake_parse_arguments(F "" "" "SOURCES;DEFS;LIBS;SEEDS" ${ARGN})
    add_executable(${name} ${F_SOURCES})
    target_compile_definitions(${name} PRIVATE ${F_DEFS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    set(corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
    file(MAKE_DIRECTORY ${corpus})
    add_test(NAME ${name}
             COMMAND ${name} -max_total_time=30 -max_len=16384 -rss_limit_mb=2048
                     -print_final_stats=1 ${corpus} ${F_SEEDS})
    set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 120)
  endfunction()

  vtsm_fuzz(fuzz_proto SOURCES fuzz_proto.c LIBS vtsm_proto
            SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_seeds/proto)
  vtsm_fuzz(fuzz_requester SOURCES fuzz_wire.c DEFS FUZZ_REQUESTER LIBS vtsm_spdm_req)
  vtsm_fuzz(fuzz_device SOURCES fuzz_wire.c DEFS FUZZ_DEVICE LIBS vtsm_devemu)
  vtsm_fuzz(fuzz_abi SOURCES fuzz_wire.c DEFS FUZZ_ABI LIBS vtsm_abi)
  vtsm_fuzz(fuzz_parsers SOURCES fuzz_wire.c DEFS FUZZ_PARSERS LIBS vtsm_proto)
endif()
