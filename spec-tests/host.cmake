# Host shim: fake TSM in a thread, fd-driven form, asynchronous DOE callbacks, trace hook,
# DOE TCP backend.
vtsm_add_test(test_host SOURCES test_host.c LIBS vtsm_host Threads::Threads)
# tsm-host as a process: usage errors, IDE / TVM / TDI / relay commands against a fake TSM.
vtsm_add_test(test_host_cli SOURCES test_host_cli.c LIBS vtsm_abi vtsm_proto Threads::Threads
              LABELS unit process)
add_dependencies(test_host_cli tsm-host)
