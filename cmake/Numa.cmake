# libnuma (Debian: libnuma-dev) gives onecard NUMA memory policies: with several nodes, the routed experts'
# pages interleaved over them (--numa interleave). Optional: without it threads are still pinned per node and
# pages stay where first touched.
find_path(ONECARD_NUMA_INCLUDE_DIR numa.h numaif.h)
find_library(ONECARD_NUMA_LIBRARY numa)
if(ONECARD_NUMA_INCLUDE_DIR AND ONECARD_NUMA_LIBRARY)
  set(ONECARD_HAVE_LIBNUMA ON)
  message(STATUS "onecard: libnuma found (${ONECARD_NUMA_LIBRARY}): NUMA interleaving enabled")
else()
  set(ONECARD_HAVE_LIBNUMA OFF)
  message(STATUS "onecard: libnuma not found (Debian: libnuma-dev): building without NUMA memory policies; "
                 "--numa interleave will fall back to first touch")
endif()
