# expect.cmake - run one command and check its exit status and output.
#   cmake -DCMD="prog^^arg^^arg" -DEXPECT_RC=0 [-DEXPECT_REGEX=re] [-DFORBID_REGEX=re]
#         -P expect.cmake
# Arguments are separated by ^^ (a ; would be split by add_test). The regexes
# are matched against stdout and stderr together.
if(NOT DEFINED CMD OR NOT DEFINED EXPECT_RC)
  message(FATAL_ERROR "expect.cmake: CMD and EXPECT_RC are required")
endif()
string(REPLACE "^^" ";" cmd "${CMD}")
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("$ ${cmd}\n${out}${err}[exit status: ${rc}]")
if(NOT "${rc}" STREQUAL "${EXPECT_RC}")
  message(FATAL_ERROR "expected exit status ${EXPECT_RC}, got ${rc}")
endif()
if(DEFINED EXPECT_REGEX AND NOT "${EXPECT_REGEX}" STREQUAL "")
  if(NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
    message(FATAL_ERROR "output does not match: ${EXPECT_REGEX}")
  endif()
endif()
if(DEFINED FORBID_REGEX AND NOT "${FORBID_REGEX}" STREQUAL "")
  if("${out}${err}" MATCHES "${FORBID_REGEX}")
    message(FATAL_ERROR "output matches what it must not: ${FORBID_REGEX}")
  endif()
endif()
