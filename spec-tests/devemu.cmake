# devemu/: the emulated device's SPDM responder in-process, and the tsm-devemu process.
vtsm_add_test(test_devemu SOURCES test_devemu.c LIBS vtsm_devemu)
# IDE_KM, the simulated link and TDISP, driven by the TSM's requester over a loopback.
vtsm_add_test(test_devemu_idekm SOURCES test_devemu_idekm.c LIBS vtsm_devemu vtsm_spdm_req)
vtsm_add_test(test_devemu_tdisp SOURCES test_devemu_tdisp.c LIBS vtsm_devemu vtsm_spdm_req)
vtsm_add_test(test_devemu_proc SOURCES test_devemu_proc.c LIBS vtsm_spdm_req vtsm_proto
              vtsm_common LABELS unit process)
add_dependencies(test_devemu_proc tsm-devemu)
# The spdm-emu socket ends against other peers: session end, split writers, QEMU's frames.
vtsm_add_test(test_interop SOURCES test_interop.c LIBS vtsm_host vtsm_spdm_req vtsm_proto vtsm_common
              LABELS process)
add_dependencies(test_interop tsm-devemu vtsm-split-peer)
