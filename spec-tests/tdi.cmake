# tsm/tsm_tdi + tsm/tsm_tvm: the TDI state table (conformance, every state x request x
# requester), TVMs and guest request authentication, and the TDISP requester flows.
# The two modules are compiled into the tests directly (they need nothing else of
# vtsm_tsm), so these tests build while tsmd itself is being changed.
set(VTSM_TDI_SOURCES ${PROJECT_SOURCE_DIR}/tsm/tsm_tdi.c ${PROJECT_SOURCE_DIR}/tsm/tsm_tvm.c
                      ${PROJECT_SOURCE_DIR}/tsm/tsm_reply.c ${PROJECT_SOURCE_DIR}/tsm/tsm_reply_tdi.c)
list(APPEND VTSM_TDI_SOURCES ${PROJECT_SOURCE_DIR}/tsm/tsm_mmio.c)
set(VTSM_TDI_LIBS vtsm_spdm_req vtsm_abi vtsm_proto vtsm_common)
vtsm_add_test(test_tdi_table SOURCES test_tdi_table.c ${VTSM_TDI_SOURCES} LIBS ${VTSM_TDI_LIBS})
vtsm_add_test(test_tvm SOURCES test_tvm.c ${VTSM_TDI_SOURCES} LIBS ${VTSM_TDI_LIBS})
foreach(t test_tdi_table test_tvm)
  target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR}/tsm)
endforeach()
# The TDISP flows need the device emulator (SPDM session in-process, TDISP loopback).
if(TARGET vtsm_devemu)
  vtsm_add_test(test_tdi_tdisp SOURCES test_tdi_tdisp.c ${VTSM_TDI_SOURCES}
                LIBS ${VTSM_TDI_LIBS} vtsm_devemu)
  target_include_directories(test_tdi_tdisp PRIVATE ${PROJECT_SOURCE_DIR}/tsm)
endif()
# tsm/tsm_mmio: MMIO mappings and DMA of a bound TDI, at their edges.
vtsm_add_test(test_tdi_mmio SOURCES test_tdi_mmio.c ${VTSM_TDI_SOURCES} LIBS ${VTSM_TDI_LIBS})
target_include_directories(test_tdi_mmio PRIVATE ${PROJECT_SOURCE_DIR}/tsm)
