# tsmd as a service: configuration refusals, exit codes, --version, systemd socket
# activation and readiness notification.
vtsm_add_test(test_tsmd_service SOURCES test_tsmd_service.c LIBS vtsm_host vtsm_common
              LABELS process)
add_dependencies(test_tsmd_service tsmd)

# The installed tree used from outside: cmake --install into a temporary prefix, then a C
# and a C++ program built through pkg-config and find_package(vtsm) (shared and static)
# run against the installed tsmd.
find_program(VTSM_TEST_CXX NAMES c++ g++ clang++)
if(VTSM_TEST_CXX)
  set(san "")
  if(VTSM_SANITIZERS)
    string(REPLACE ";" "," san "${VTSM_SANITIZERS}")
    set(san "-fsanitize=${san}")
  endif()
  set(have_man 0)
  if(HELP2MAN)
    set(have_man 1)
  endif()
  add_test(NAME test_install
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh ${PROJECT_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_install PROPERTIES LABELS process TIMEOUT 60
    ENVIRONMENT "VTSM_CC=${CMAKE_C_COMPILER};VTSM_CXX=${VTSM_TEST_CXX};VTSM_SANFLAGS=${san};VTSM_HAVE_MAN=${have_man}")
else()
  message(STATUS "vtsm: no C++ compiler found: test_install (external C/C++ builds) is left out")
endif()

# The first-run paths: tsm-demo cleans up everything it made; the README's manual session
# works as written, twice in a row, and leaves nothing behind.
add_test(NAME test_demo COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_demo.sh ${PROJECT_BINARY_DIR})
add_test(NAME test_readme_session
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_readme_session.sh ${PROJECT_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(test_demo test_readme_session PROPERTIES LABELS e2e TIMEOUT 60)
