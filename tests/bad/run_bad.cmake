# run_bad.cmake - one golden-file test of a bad spec.
#
#   cmake -DNINJAC=path/to/ninjac -DSPEC=tests/bad/NAME.ninja
#         -DEXPECTED=tests/bad/NAME.expected [-DARGS_FILE=tests/bad/NAME.args]
#         [-DSTATUS_FILE=tests/bad/NAME.status] -DOUTDIR=some/scratch/dir
#         [-DSOURCE_DIR=repo/root] -P tests/bad/run_bad.cmake
#
# Runs `ninjac ARGS -o OUTDIR SPEC` (OUTDIR is created empty first) from the
# repository root (SOURCE_DIR if given, otherwise the current directory, which
# ctest sets), so that diagnostics name the spec as tests/bad/NAME.ninja.
# Checks, and reports every failed check before failing:
#   - the exit status: the number in STATUS_FILE if it exists, otherwise 1;
#   - stderr, byte for byte, against EXPECTED (both texts and a diff are
#     printed on a mismatch);
#   - stdout is empty;
#   - on a non-zero status OUTDIR is still empty (nothing is written on
#     error, not even a temporary file); on status 0 it holds NAME.h and NAME.c.
# ARGS_FILE holds extra command-line arguments (e.g. `-D n=0`), split like a
# shell command line. A crash or a hang (60 s) fails the test with the reason.

foreach(var NINJAC SPEC EXPECTED OUTDIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_bad.cmake: -D${var}=... is required")
  endif()
endforeach()
if(DEFINED SOURCE_DIR AND NOT "${SOURCE_DIR}" STREQUAL "")
  set(workdir "${SOURCE_DIR}")
else()
  set(workdir "${CMAKE_CURRENT_BINARY_DIR}")   # in script mode: the current directory
endif()
foreach(var EXPECTED ARGS_FILE STATUS_FILE)
  if(DEFINED ${var} AND NOT "${${var}}" STREQUAL "" AND NOT IS_ABSOLUTE "${${var}}")
    set(${var} "${workdir}/${${var}}")
  endif()
endforeach()

get_filename_component(spec_name "${SPEC}" NAME_WLE)

if(NOT EXISTS "${EXPECTED}")
  message(FATAL_ERROR "${SPEC}: no expected stderr ${EXPECTED} (tests/bad/regen.sh writes it)")
endif()
file(READ "${EXPECTED}" expected)

set(args)
if(DEFINED ARGS_FILE AND EXISTS "${ARGS_FILE}")
  file(READ "${ARGS_FILE}" args_text)
  string(STRIP "${args_text}" args_text)
  separate_arguments(args UNIX_COMMAND "${args_text}")
endif()

set(expected_status 1)
if(DEFINED STATUS_FILE AND EXISTS "${STATUS_FILE}")
  file(READ "${STATUS_FILE}" expected_status)
  string(STRIP "${expected_status}" expected_status)
  if(NOT expected_status MATCHES "^[0-9]+$")
    message(FATAL_ERROR "${STATUS_FILE}: expected an exit status, got '${expected_status}'")
  endif()
endif()

file(REMOVE_RECURSE "${OUTDIR}")
file(MAKE_DIRECTORY "${OUTDIR}")

execute_process(
  COMMAND "${NINJAC}" ${args} -o "${OUTDIR}" "${SPEC}"
  WORKING_DIRECTORY "${workdir}"
  RESULT_VARIABLE status
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 60)

set(failures)
set(shown_command "ninjac ${args_text} -o ${OUTDIR} ${SPEC}")
string(REPLACE "  " " " shown_command "${shown_command}")

if(NOT "${status}" STREQUAL "${expected_status}")
  list(APPEND failures "exit status ${status}, expected ${expected_status}")
endif()

if(NOT "${err}" STREQUAL "${expected}")
  list(APPEND failures "stderr differs from ${EXPECTED}")
  set(actual_file "${OUTDIR}.stderr")
  file(WRITE "${actual_file}" "${err}")
  set(diff_text "")
  find_program(DIFF_PROGRAM diff)
  if(DIFF_PROGRAM)
    execute_process(COMMAND "${DIFF_PROGRAM}" -u --label expected --label actual
                            "${EXPECTED}" "${actual_file}"
                    OUTPUT_VARIABLE diff_text ERROR_QUIET)
  else()
    # No diff(1): a line-by-line comparison, in the same - / + form.
    string(REPLACE "\n" ";" exp_lines "${expected}")
    string(REPLACE "\n" ";" act_lines "${err}")
    list(LENGTH exp_lines ne)
    list(LENGTH act_lines na)
    set(diff_text "--- expected\n+++ actual\n")
    set(i 0)
    while(i LESS ne OR i LESS na)
      set(e "<none>")
      set(a "<none>")
      if(i LESS ne)
        list(GET exp_lines ${i} e)
      endif()
      if(i LESS na)
        list(GET act_lines ${i} a)
      endif()
      if("${e}" STREQUAL "${a}")
        string(APPEND diff_text " ${e}\n")
      else()
        if(i LESS ne)
          string(APPEND diff_text "-${e}\n")
        endif()
        if(i LESS na)
          string(APPEND diff_text "+${a}\n")
        endif()
      endif()
      math(EXPR i "${i} + 1")
    endwhile()
  endif()
  message("---- expected stderr (${EXPECTED}):\n${expected}---- end of expected\n"
          "---- actual stderr of ${shown_command}:\n${err}---- end of actual\n"
          "---- diff:\n${diff_text}---- end of diff")
endif()

if(NOT "${out}" STREQUAL "")
  list(APPEND failures "stdout is not empty")
  message("---- stdout:\n${out}---- end of stdout")
endif()

file(GLOB left LIST_DIRECTORIES true RELATIVE "${OUTDIR}" "${OUTDIR}/*" "${OUTDIR}/.*")
list(SORT left)
string(REPLACE ";" ", " left_shown "${left}")
if(expected_status EQUAL 0)
  if(NOT left STREQUAL "${spec_name}.c;${spec_name}.h")
    list(APPEND failures "the output directory holds [${left_shown}], expected ${spec_name}.c and ${spec_name}.h")
  endif()
elseif(left)
  list(APPEND failures "written although the expected exit status is ${expected_status}: ${left_shown} in ${OUTDIR}")
endif()

if(failures)
  string(REPLACE ";" "\n  " failures "${failures}")
  message(FATAL_ERROR "${SPEC}: ${shown_command}\n  ${failures}")
endif()
file(REMOVE_RECURSE "${OUTDIR}")
file(REMOVE "${OUTDIR}.stderr")
