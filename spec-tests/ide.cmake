# IDE (TSM side): the simulated-link frame codec, the platform model (root ports, stream IDs,
# key slots) and the IDE_KM flows. The two tsm/ modules are built on their own here, so
# these tests depend on them and the libraries below only, not on the rest of tsmd.
add_library(vtsm_test_tsm_ide STATIC ${PROJECT_SOURCE_DIR}/tsm/tsm_platform.c
                                     ${PROJECT_SOURCE_DIR}/tsm/tsm_ide.c
                                     ${PROJECT_SOURCE_DIR}/tsm/tsm_reply.c)
target_include_directories(vtsm_test_tsm_ide PUBLIC ${PROJECT_SOURCE_DIR}/tsm)
target_link_libraries(vtsm_test_tsm_ide PUBLIC vtsm_spdm_req vtsm_abi vtsm_proto vtsm_common
                      PkgConfig::CBOR Threads::Threads)

vtsm_add_test(test_link_frame SOURCES test_link_frame.c LIBS vtsm_proto)
vtsm_add_test(test_platform SOURCES test_platform.c LIBS vtsm_test_tsm_ide)
# IDE_KM flows against a scripted IDE_KM responder written in the test ...
vtsm_add_test(test_ide SOURCES test_ide.c LIBS vtsm_test_tsm_ide)
# ... and against the device emulator in-process (SPDM session, IDE_KM responder, link).
if(TARGET vtsm_devemu)
  vtsm_add_test(test_ide_loopback SOURCES test_ide_loopback.c
                LIBS vtsm_test_tsm_ide vtsm_devemu)
endif()
