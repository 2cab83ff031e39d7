# Soak: long concurrent runs against real processes. Label "soak": not in the default test
# run (scripts/test.sh excludes it); run with `ctest --test-dir build -L soak`.
add_executable(soak_lifecycle soak_lifecycle.c)
target_link_libraries(soak_lifecycle PRIVATE vtsm_e2e_util vtsm_guest PkgConfig::CMOCKA)
add_dependencies(soak_lifecycle tsmd tsm-devemu)
add_test(NAME soak_lifecycle COMMAND soak_lifecycle)
set_tests_properties(soak_lifecycle PROPERTIES LABELS soak TIMEOUT 120
  ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")

# Scale: STATUS at sizes beyond one ABI message (1024 devices, 64 connected devices,
# 2 devices x 255 bound TDIs). Label "scale", one ctest entry per case.
add_executable(scale_status scale_status.c)
target_link_libraries(scale_status PRIVATE vtsm_e2e_util vtsm_guest PkgConfig::CMOCKA)
add_dependencies(scale_status tsmd tsm-devemu)
foreach(c test_status_1024_devices test_status_64_connected_devices
          test_status_2_devices_255_bound_tdis)
  add_test(NAME scale_status.${c} COMMAND scale_status ${c})
  set_tests_properties(scale_status.${c} PROPERTIES LABELS scale TIMEOUT 120
    ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")
endforeach()
