# Guest shim: the TVM credential and GUEST_REQUEST envelopes; evidence tokens, reference
# values and the accept/reject decision (against a fake TSM in a thread); the tsm-guest
# CLI against the same fake on a Unix socket.
add_library(vtsm_guest_fixture STATIC test_guest_fixture.c)
target_link_libraries(vtsm_guest_fixture PUBLIC vtsm_guest Threads::Threads)
target_compile_definitions(vtsm_guest_fixture PRIVATE VTSM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

vtsm_add_test(test_guest SOURCES test_guest.c LIBS vtsm_guest)
vtsm_add_test(test_guest_verify SOURCES test_guest_verify.c LIBS vtsm_guest_fixture)
vtsm_add_test(test_guest_cli SOURCES test_guest_cli.c LIBS vtsm_guest_fixture
              LABELS unit process)
add_dependencies(test_guest_cli tsm-guest)

# One end-to-end run with real processes (skipped if tsmd does not answer GUEST_REQUEST).
add_executable(test_guest_e2e test_guest_e2e.c)
target_link_libraries(test_guest_e2e PRIVATE vtsm_e2e_util vtsm_guest PkgConfig::CMOCKA)
target_compile_definitions(test_guest_e2e PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin")
add_dependencies(test_guest_e2e tsmd tsm-devemu tsm-host tsm-guest)
add_test(NAME test_guest_e2e COMMAND test_guest_e2e)
set_tests_properties(test_guest_e2e PROPERTIES LABELS "e2e" TIMEOUT 60
  ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")
