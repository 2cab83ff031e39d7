# tsm/spdm: the SPDM requester against a scripted transport (canned DOE responses).
vtsm_add_test(test_spdm_req SOURCES test_spdm_req.c LIBS vtsm_spdm_req)
# ... and in-process against the device emulator's responder (loopback; host attacks).
if(TARGET vtsm_devemu)
  vtsm_add_test(test_spdm_req_loopback SOURCES test_spdm_req_loopback.c
                LIBS vtsm_spdm_req vtsm_devemu)
endif()
# KEY_UPDATE and HEARTBEAT inside the session, against the device emulator.
if(TARGET vtsm_devemu)
  vtsm_add_test(test_spdm_key_update SOURCES test_spdm_key_update.c
                LIBS vtsm_spdm_req vtsm_devemu)
endif()
