# valgrind --leak-check=full on ninjac for every spec, op spec and bad spec:
# no memory errors and no leaks, whatever the input.
# With -DSHARD=k -DSHARDS=m: every m-th spec from the k-th (sorted).
file(GLOB_RECURSE specs ${SOURCE}/specs/*.ninja ${SOURCE}/tests/*.ninja)
list(SORT specs)
if(DEFINED SHARDS)
  set(all ${specs})
  set(specs)
  list(LENGTH all count)
  foreach(i RANGE ${SHARD} ${count} ${SHARDS})
    if(i LESS count)
      list(GET all ${i} spec)
      list(APPEND specs ${spec})
    endif()
  endforeach()
endif()
file(MAKE_DIRECTORY ${WORK})
set(failed "")
foreach(spec IN LISTS specs)
  execute_process(
    COMMAND ${VALGRIND} --quiet --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all
            --error-exitcode=99 ${NINJAC} ${spec} -o ${WORK}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(rc EQUAL 99 OR err MATCHES "==[0-9]+==")
    list(APPEND failed ${spec})
    message("${spec}:\n${err}")
  endif()
endforeach()
list(LENGTH specs n)
if(failed)
  message(FATAL_ERROR "valgrind found errors or leaks in ninjac on: ${failed}")
endif()
message(STATUS "valgrind: ninjac clean on ${n} specs")
