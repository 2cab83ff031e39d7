# devemu/: the emulated device's SPDM responder in-process, and the tsm-devemu process.
vtsm_add_test(test_devemu SOURCES test_devemu.c LIBS vtsm_devemu)
vtsm_add_test(test_devemu_proc SOURCES test_devemu_proc.c LIBS vtsm_proto vtsm_common
              LABELS unit process)
add_dependencies(test_devemu_proc tsm-devemu)
