# Host shim: fake TSM in a thread, fd-driven form, trace hook, DOE TCP backend.
vtsm_add_test(test_host SOURCES test_host.c LIBS vtsm_host Threads::Threads)
