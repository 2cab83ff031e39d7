# tsmd internals.

# The layering rule of docs/architecture.md ("The typed boundary"): the object model
# compiles without <cbor.h>, vtsm_cbor.h and the ABI codec (vtsm_abi.h). Its files are
# compiled once more with an include directory, searched first, in which each of those
# headers is an #error; the test builds that target, so an include anywhere in the
# object model (direct or through another header) fails it.
set(vtsm_object_model
  ${PROJECT_SOURCE_DIR}/tsm/tsm_pdev.c
  ${PROJECT_SOURCE_DIR}/tsm/tsm_tdi.c
  ${PROJECT_SOURCE_DIR}/tsm/tsm_tvm.c
  ${PROJECT_SOURCE_DIR}/tsm/tsm_ide.c
  ${PROJECT_SOURCE_DIR}/tsm/tsm_platform.c)
list(APPEND vtsm_object_model ${PROJECT_SOURCE_DIR}/tsm/tsm_mmio.c)
add_library(tsm_object_model_nocbor OBJECT EXCLUDE_FROM_ALL ${vtsm_object_model})
target_include_directories(tsm_object_model_nocbor BEFORE PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/nocbor)
target_include_directories(tsm_object_model_nocbor PRIVATE
  ${PROJECT_SOURCE_DIR}/tsm
  $<TARGET_PROPERTY:vtsm_spdm_req,INTERFACE_INCLUDE_DIRECTORIES>
  $<TARGET_PROPERTY:vtsm_proto,INTERFACE_INCLUDE_DIRECTORIES>
  $<TARGET_PROPERTY:vtsm_abi,INTERFACE_INCLUDE_DIRECTORIES>
  $<TARGET_PROPERTY:vtsm_common,INTERFACE_INCLUDE_DIRECTORIES>)
target_link_libraries(tsm_object_model_nocbor PRIVATE OpenSSL::Crypto)
add_test(NAME tsm_object_model_nocbor
  COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target tsm_object_model_nocbor)
set_tests_properties(tsm_object_model_nocbor PROPERTIES LABELS unit TIMEOUT 60)

# Guest requests checked off the loop: several guests with many requests in flight each.
add_executable(test_guest_offload test_guest_offload.c)
target_link_libraries(test_guest_offload PRIVATE vtsm_e2e_util vtsm_guest PkgConfig::CMOCKA)
add_dependencies(test_guest_offload tsmd tsm-devemu)
add_test(NAME test_guest_offload COMMAND test_guest_offload)
set_tests_properties(test_guest_offload PROPERTIES LABELS "e2e" TIMEOUT 60
  ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")
