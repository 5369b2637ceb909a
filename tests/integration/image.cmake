# The agent image (deploy/Dockerfile) built with podman and run on the lab with the DaemonSet's privileges.
#   npt_image_test  labels root, image: scripts/image build --binary (the runtime stage around this build's binary),
#                   then the container in the lab's node namespace: privileges from inside, exact drops in /metrics
#                   and /events. Skipped where podman cannot run, except under CI=true.
# Its own stage in scripts/test.
if(NOT TARGET npt_capture)
  return()
endif()
add_test(NAME npt_image_test COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/image_test.py)
set_tests_properties(npt_image_test PROPERTIES
  LABELS "root;image" RUN_SERIAL TRUE TIMEOUT 900 SKIP_RETURN_CODE 77
  ENVIRONMENT "NPT_BINARY=$<TARGET_FILE:netpol-trace>;NPT_LAB=${PROJECT_SOURCE_DIR}/scripts/lab")
