# find_package(Ninjac): the ninjac compiler, its runtime, and ninjac_add_model.
include(CMakeFindDependencyMacro)
find_dependency(PkgConfig)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
find_dependency(BLAS)
find_package(OpenMP COMPONENTS C)   # the runtime links it where it was found
include("${CMAKE_CURRENT_LIST_DIR}/NinjacTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/NinjacModel.cmake")
