# Installs the build tree BUILD into WORK/prefix, then configures, builds and
# runs the consumer project in tests/package against it.
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE}/tests/package -B ${WORK}/consumer
                        -DCMAKE_PREFIX_PATH=${WORK}/prefix RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring a project with find_package(Ninjac) failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND ${WORK}/consumer/tiny_mlp train --steps 300 --samples 3 --data ${SOURCE}/data/names.txt
                        --save ${WORK}/ck.safetensors --log ${WORK}/loss.csv --plot ""
                RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(rc OR NOT out MATCHES "val +loss")
  message(FATAL_ERROR "the consumer's trainer did not train")
endif()
