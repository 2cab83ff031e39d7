# Soak: long concurrent runs against real processes. Label "soak": not in the default test
# run (scripts/test.sh excludes it); run with `ctest --test-dir build -L soak`.
add_executable(soak_lifecycle soak_lifecycle.c)
target_link_libraries(soak_lifecycle PRIVATE vtsm_e2e_util vtsm_guest PkgConfig::CMOCKA)
add_dependencies(soak_lifecycle tsmd tsm-devemu)
add_test(NAME soak_lifecycle COMMAND soak_lifecycle)
set_tests_properties(soak_lifecycle PROPERTIES LABELS soak TIMEOUT 120
  ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")
