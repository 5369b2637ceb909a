# The rooms of userspace/ include each other in one direction only (cli/ and agent/ never each other): the
# order is the table in layering_test.py.
find_program(NPT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(NPT_PYTHON3 NAMES python3)
add_test(NAME layering COMMAND ${NPT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/layering_test.py ${PROJECT_SOURCE_DIR}/userspace)
